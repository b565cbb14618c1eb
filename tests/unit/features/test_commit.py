"""Commits of a feature group (fti.features.commit): upserts and appends offline, the online store
following the offline commits, and catching it up after a lost write."""

from __future__ import annotations

import pyarrow as pa
import pytest

import fti
from fti.errors import ValidationError
from tests.unit.features._data import frame


def test_reinserting_same_key_and_time_updates_the_row(transactions) -> None:
    transactions.insert(frame([1, 2], [0, 0], [1.0, 2.0]))
    transactions.insert(frame([1], [0], [5.0]))
    data = transactions.read().sort_values("cc_num")
    assert data["amount"].tolist() == [5.0, 2.0]
    assert transactions.online_lookup([{"cc_num": 1}])[0]["amount"] == 5.0


def test_older_event_never_overwrites_newer_online(transactions) -> None:
    transactions.insert(frame([1], [10], [10.0]))
    transactions.insert(frame([1], [2], [2.0]))  # arrives late
    assert transactions.online_lookup([{"cc_num": 1}])[0]["amount"] == 10.0


def test_append_mode_skips_the_merge_and_statistics_can_be_deferred(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    result = transactions.insert(frame([2, 3], [1, 2], [2.0, 3.0]), write_mode="append", statistics=False)
    assert result.rows == 2
    assert sorted(transactions.read()["cc_num"].tolist()) == [1, 2, 3]
    assert transactions.online_lookup([{"cc_num": 3}])[0]["amount"] == 3.0
    # not stored at that commit, computed on demand from the table at that version
    assert transactions.statistics(version=result.version)["amount"]["count"] == 3
    with pytest.raises(ValidationError, match="write_mode must be"):
        transactions.insert(frame([4], [3], [4.0]), write_mode="overwrite")


def test_materialize_catches_up_after_a_lost_online_write(transactions, project: fti.Project) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    # Simulate a crash between the offline commit and the online write.
    project.backends.offline.write(
        transactions.table_name,
        pa.Table.from_pandas(frame([1], [5], [50.0]), preserve_index=False),
        merge_keys=["cc_num", "ts"],
    )
    assert transactions.online_lookup([{"cc_num": 1}])[0]["amount"] == 1.0
    assert transactions.materialize() == 1
    assert transactions.online_lookup([{"cc_num": 1}])[0]["amount"] == 50.0
    assert transactions.materialize() == 0


def test_materialize_all_catches_up_a_table_written_outside_fti(home, catalog_url) -> None:
    """fti.connect catches up what fti's own writers left behind (tests/unit/features/test_recovery.py);
    the full scan compares every group with its offline table, whatever wrote it."""
    project = fti.connect(home=home, catalog_url=catalog_url)
    fg = project.feature_store.get_or_create_feature_group(
        "t", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    fg.insert(frame([1], [0], [1.0]))
    project.backends.offline.write(
        fg.table_name,
        pa.Table.from_pandas(frame([2], [0], [2.0]), preserve_index=False),
        merge_keys=["cc_num"],
    )
    project.close()
    again = fti.connect(home=home, catalog_url=catalog_url)
    fg = again.feature_store.get_feature_group("t")
    assert fg.online_lookup([{"cc_num": 2}]) == [None]  # the catalog shows nothing behind
    assert again.feature_store.materialize_all() == 2
    assert fg.online_lookup([{"cc_num": 2}])[0]["amount"] == 2.0
    assert [c.version for c in fg.commits()] == [0, 1]
    again.close()
