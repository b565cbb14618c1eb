"""FeatureGroup.insert_stream: many pieces, one commit; a failing piece commits nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import fti
from fti.errors import SchemaError, ValidationError

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(keys: list[int], hours: list[int], amounts: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"cc_num": keys, "ts": [T0 + timedelta(hours=h) for h in hours], "amount": amounts})


@pytest.fixture
def group(project: fti.Project) -> Any:
    return project.feature_store.get_or_create_feature_group(
        "tx", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )


def test_pieces_of_any_kind_make_one_commit_read_back_offline_and_online(group: Any) -> None:
    pieces = [
        frame([1, 2], [0, 0], [1.0, 2.0]),
        pa.Table.from_pandas(frame([3], [1], [3.0]), preserve_index=False),
        pa.RecordBatch.from_pandas(frame([1], [5], [1.5]), preserve_index=False),
        pl.from_pandas(frame([4, 5], [2, 2], [4.0, 5.0])),
    ]
    result = group.insert_stream(iter(pieces))
    assert (result.version, result.rows, result.validation) == (0, 6, "none")
    assert [(c.version, c.rows_inserted) for c in group.commits()] == [(0, 6)]
    stored = group.read().sort_values(["cc_num", "ts"])
    assert stored["amount"].tolist() == [1.0, 1.5, 2.0, 3.0, 4.0, 5.0]
    assert [f.name for f in group.features] == ["cc_num", "ts", "amount"]
    online = group.online_lookup([{"cc_num": 1}, {"cc_num": 5}])
    assert [row["amount"] for row in online] == [1.5, 5.0]  # the latest event per key
    assert result.online_rows == 5


def test_a_failing_piece_commits_nothing_and_raises_its_own_error(group: Any) -> None:
    bad = frame([7, 8], [0, 0], [1.0, 2.0])
    bad["cc_num"] = pd.array([7, None], dtype="Int64")
    with pytest.raises(ValidationError, match="primary key column 'cc_num' has 1 null value"):
        group.insert_stream(iter([frame([1], [0], [1.0]), bad]))
    assert group.commits() == []
    assert group.project.backends.offline.version(group.table_name) is None
    fresh = group.project.feature_store.get_feature_group("tx")
    assert fresh.features is None  # the first piece's schema was not kept
    # a schema mismatch in a later piece, on a group that already holds data
    group.insert(frame([1], [0], [1.0]))
    with pytest.raises(SchemaError, match="unexpected column"):
        group.insert_stream(iter([frame([2], [0], [2.0]), frame([3], [0], [3.0]).assign(extra=1)]))
    assert [c.version for c in group.commits()] == [0]
    assert group.read()["cc_num"].tolist() == [1]


def test_an_exception_of_the_source_commits_nothing(group: Any) -> None:
    def source() -> Iterator[pd.DataFrame]:
        yield frame([1], [0], [1.0])
        raise RuntimeError("the scorer crashed")

    with pytest.raises(RuntimeError, match="the scorer crashed"):
        group.insert_stream(source())
    assert group.commits() == []
    assert group.project.backends.offline.version(group.table_name) is None


def test_upsert_replaces_stored_rows_append_adds(group: Any) -> None:
    group.insert(frame([1, 2], [0, 0], [1.0, 2.0]))
    group.insert_stream(iter([frame([1], [0], [10.0]), frame([3], [0], [3.0])]), write_mode="upsert")
    assert group.read().sort_values("cc_num")["amount"].tolist() == [10.0, 2.0, 3.0]
    group.insert_stream(iter([frame([4], [0], [4.0])]))
    assert group.read()["cc_num"].sort_values().tolist() == [1, 2, 3, 4]
    assert [c.rows_inserted for c in group.commits()] == [2, 2, 1]


def test_bad_arguments(group: Any) -> None:
    with pytest.raises(ValidationError, match="cannot insert an empty stream"):
        group.insert_stream(iter([]))
    with pytest.raises(ValidationError, match="validation must be 'strict' or 'none'"):
        group.insert_stream(iter([frame([1], [0], [1.0])]), validation="warn")
    with pytest.raises(ValidationError, match="write_mode must be 'upsert' or 'append'"):
        group.insert_stream(iter([frame([1], [0], [1.0])]), write_mode="merge")
    with pytest.raises(ValidationError, match="duplicate"):
        group.insert_stream(iter([frame([1, 1], [0, 0], [1.0, 2.0])]))
    with pytest.raises(ValidationError, match="unique_keys must be True or False"):
        group.insert_stream(iter([frame([1], [0], [1.0])]), unique_keys="yes")
    assert group.commits() == []


def test_unique_keys_skips_only_the_duplicate_check(group: Any) -> None:
    """The caller's guarantee replaces the duplicate check; every other check still runs."""
    group.insert(frame([9], [0], [9.0]))
    nulls = frame([7, 8], [0, 0], [1.0, 2.0])
    nulls["cc_num"] = pd.array([7, None], dtype="Int64")
    with pytest.raises(ValidationError, match="null value"):
        group.insert_stream(iter([nulls]), unique_keys=True)
    with pytest.raises(SchemaError, match="unexpected column"):
        group.insert_stream(iter([frame([1], [0], [1.0]).assign(extra=1)]), unique_keys=True)
    assert [c.version for c in group.commits()] == [0]
    # a repeated key is the caller's to avoid: with the guarantee it is written as given
    result = group.insert_stream(iter([frame([1, 1], [0, 0], [1.0, 2.0])]), unique_keys=True)
    assert result.rows == 2
    assert sorted(group.read()["amount"].tolist()) == [1.0, 2.0, 9.0]


def test_commit_metadata_is_stored_with_the_commit_and_fti_keys_are_refused(group: Any) -> None:
    result = group.insert_stream([frame([1], [0], [1.0])], commit_metadata={"log_spool": "w1:1-3"})
    [commit] = group.project.backends.offline.history(group.table_name)
    assert commit.version == result.version
    assert commit.metadata == {"log_spool": "w1:1-3", "operation": "insert", "validation": "none"}
    for bad in ({"operation": "x"}, {"k": 1}):
        with pytest.raises(ValidationError, match="commit_metadata must map strings to strings"):
            group.insert_stream([frame([2], [0], [2.0])], commit_metadata=bad)
    assert len(group.commits()) == 1  # a refused write commits nothing
