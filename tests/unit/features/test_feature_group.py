"""Feature groups on real Delta tables and a real catalog (SQLite and PostgreSQL): reads, time
travel, online lookups, statistics, schema changes and deletion."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti.errors import NotFoundError, SchemaError, ValidationError
from tests.unit.features._data import T0, frame


def test_insert_read_and_time_travel(transactions) -> None:
    first = transactions.insert(frame([1, 2], [0, 1], [10.0, 20.0]))
    second = transactions.insert(frame([1, 3], [5, 6], [11.0, 30.0]))
    assert (first.version, first.rows) == (0, 2)
    assert (second.version, second.rows) == (1, 2)
    latest = transactions.read().sort_values(["cc_num", "ts"])
    assert latest["amount"].tolist() == [10.0, 11.0, 20.0, 30.0]
    assert transactions.read(as_of=0)["amount"].sort_values().tolist() == [10.0, 20.0]
    assert transactions.read(columns=["amount"]).columns.tolist() == ["amount"]
    assert transactions.read_arrow().num_rows == 4
    assert transactions.read_polars().height == 4
    assert str(transactions.read()["ts"].dtype) == "datetime64[us, UTC]"
    history = transactions.commits()
    assert [c.version for c in history] == [0, 1]
    assert [c.rows_inserted for c in history] == [2, 2]


def test_time_travel_by_timestamp(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    between = datetime.now(UTC)
    transactions.insert(frame([2], [0], [2.0]))
    assert transactions.read(as_of=between)["cc_num"].tolist() == [1]


def test_online_lookup_latest_row_in_request_order(transactions) -> None:
    transactions.insert(frame([1, 1, 2], [0, 3, 1], [1.0, 3.0, 2.0]))
    rows = transactions.online_lookup([{"cc_num": 2}, {"cc_num": 99}, {"cc_num": 1}])
    assert rows[1] is None
    assert rows[0]["amount"] == 2.0 and rows[2]["amount"] == 3.0
    assert rows[2]["ts"] == T0 + timedelta(hours=3)


def test_polars_and_arrow_inputs(transactions) -> None:
    import polars as pl

    transactions.insert(pl.from_pandas(frame([1], [0], [1.0])))
    transactions.insert(pa.Table.from_pandas(frame([2], [0], [2.0]), preserve_index=False))
    assert sorted(transactions.read()["cc_num"].tolist()) == [1, 2]


def test_statistics_per_commit(transactions) -> None:
    transactions.insert(frame([1, 2, 3, 4], [0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0]))
    transactions.insert(frame([5], [4], [100.0]))
    first = transactions.statistics(version=0)["amount"]
    assert first["count"] == 4 and first["nulls"] == 0
    assert first["mean"] == pytest.approx(2.5) and first["min"] == 1.0 and first["max"] == 4.0
    assert first["std"] == pytest.approx(pd.Series([1.0, 2.0, 3.0, 4.0]).std())
    assert sum(first["histogram"]["counts"]) == 4
    assert transactions.statistics()["amount"]["max"] == 100.0
    assert transactions.statistics()["category"]["approx_distinct"] == 5


def test_append_features(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    transactions.append_features([fti.Feature("flag", "bool")])
    assert transactions.read()["flag"].isna().all()
    transactions.insert(frame([2], [1], [2.0]).assign(flag=[True]))
    assert transactions.online_lookup([{"cc_num": 2}])[0]["flag"] is True
    with pytest.raises(SchemaError, match="missing column"):
        transactions.insert(frame([3], [2], [3.0]))


def test_delete_removes_everything(project: fti.Project, transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    transactions.delete()
    with pytest.raises(NotFoundError):
        project.feature_store.get_feature_group("transactions")
    assert project.backends.offline.version(transactions.table_name) is None
    assert project.backends.online.read(transactions.table_name, [(1,)]) == [None]


def test_online_lookup_missing_key_column(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    with pytest.raises(ValidationError, match=r"missing primary-key column\(s\) \['cc_num'\]"):
        transactions.online_lookup([{"card": 1}])
    with pytest.raises(ValidationError, match="list of mappings"):
        transactions.online_lookup({"cc_num": 1})


def test_online_lookup_on_offline_only_group(project: fti.Project) -> None:
    fg = project.feature_store.get_or_create_feature_group("off", primary_key=["id"])
    with pytest.raises(ValidationError, match="not online-enabled"):
        fg.online_lookup([{"id": 1}])


def test_time_travel_to_before_the_first_commit_is_an_error(transactions) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    transactions.insert(frame([1], [0], [1.0]))
    first = transactions.project.backends.offline.history(transactions.table_name)[0].timestamp
    with pytest.raises(NotFoundError, match=re.escape(f"its first commit was at {first.isoformat()}")):
        transactions.read(as_of=before)
    assert transactions.read(as_of=first)["cc_num"].tolist() == [1]


def test_time_travel_to_a_missing_version_names_the_versions(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    transactions.insert(frame([2], [0], [2.0]))
    with pytest.raises(NotFoundError) as info:
        transactions.read(as_of=99)
    assert info.value.message == (
        "feature group 'transactions' version 1 has no commit 99: its commits are 0 to 1 "
        "(see fg.commits() or `fti fg show transactions`)"
    )


def test_read_page_reads_a_window_of_rows_at_any_commit(sqlite_project: fti.Project) -> None:
    fg = sqlite_project.feature_store.get_or_create_feature_group("paged", primary_key=["id"])
    assert (fg.read_page().items, fg.read_page().total) == ([], 0)  # no commit yet
    first = fg.insert(pd.DataFrame({"id": range(5), "x": [float(i) for i in range(5)]}))
    fg.insert(pd.DataFrame({"id": range(5, 12), "x": [float(i) for i in range(5, 12)]}), write_mode="append")
    whole = fg.read().to_dict("records")
    page = fg.read_page(offset=3, limit=4)
    assert (page.total, page.has_next) == (12, True)
    assert page.items == whole[3:7]
    assert fg.read_page(offset=10, limit=5).items == whole[10:]
    old = fg.read_page(limit=50, as_of=first.version)
    assert old.total == 5 and [r["id"] for r in old] == [0, 1, 2, 3, 4]
    with pytest.raises(ValidationError, match="limit must be an integer from 0 to 1000"):
        fg.read_page(limit=10_000)
