"""fg.compact() and fg.vacuum(retention): fewer files, the same rows, time travel within retention."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

import fti
from fti.errors import NotFoundError, ValidationError
from tests.unit.features._data import frame


def _files(group) -> int:  # type: ignore[no-untyped-def]
    offline = group.project.backends.offline
    return len(offline.local_files(group.table_name, group.latest_commit_version()).paths)


def test_compaction_keeps_rows_and_history_and_vacuum_drops_only_old_files(project: fti.Project) -> None:
    fg = project.feature_store.get_or_create_feature_group(
        "tx", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    assert fg.compact() is None and fg.vacuum(timedelta(0)) == 0  # nothing written yet
    for i in range(5):
        fg.insert(frame([i, i + 10], [i, i], [float(i), float(i) + 0.5]), write_mode="append")
    snapshots = {v: fg.read(as_of=v).sort_values("cc_num", ignore_index=True) for v in range(5)}
    assert _files(fg) == 5
    version = fg.compact()
    assert version == 5 and _files(fg) == 1
    assert fg.compact() is None  # one file left: nothing to do
    pd.testing.assert_frame_equal(fg.read().sort_values("cc_num", ignore_index=True), snapshots[4])
    for v, expected in snapshots.items():  # time travel across the compaction
        pd.testing.assert_frame_equal(fg.read(as_of=v).sort_values("cc_num", ignore_index=True), expected)
    assert fg.vacuum(timedelta(days=7)) == 0  # within retention: old versions keep their files
    pd.testing.assert_frame_equal(fg.read(as_of=2).sort_values("cc_num", ignore_index=True), snapshots[2])
    online = project.backends.online
    assert online.applied_version(fg.table_name) == fg.latest_commit_version()  # no re-materialization
    assert fg.vacuum(timedelta(0)) == 5
    assert [c.operation for c in fg.commits()][-3:] == ["compact", "vacuum", "vacuum"]  # start, end
    with pytest.raises(NotFoundError, match="deleted by vacuum"):
        fg.read(as_of=1)
    assert online.applied_version(fg.table_name) == fg.latest_commit_version()
    assert fg.materialize() == 0
    assert fg.online_lookup([{"cc_num": 14}])[0]["amount"] == 4.5
    fg.insert(frame([14], [9], [99.0]))  # later inserts (an upsert) work on the compacted table
    assert fg.online_lookup([{"cc_num": 14}])[0]["amount"] == 99.0
    assert len(fg.read()) == 11  # a new (key, event time) row


def test_vacuum_rejects_a_bad_retention(sqlite_project: fti.Project) -> None:
    fg = sqlite_project.feature_store.get_or_create_feature_group(
        "tx", primary_key=["cc_num"], event_time="ts"
    )
    for bad in ("7d", -1, timedelta(hours=-1), None):
        with pytest.raises(ValidationError, match="retention must be a timedelta"):
            fg.vacuum(bad)  # type: ignore[arg-type]
