"""What a Delta commit changed, as the incremental statistics read it (issue 20): the rows it
removed or replaced (``history(...).rows_removed``, from delta-rs' metrics) and the rows that
commits only adding data added (``added_rows``), never the rows of a rewrite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa

from fti.storage.offline.delta import DeltaOfflineStore


def rows(keys: list[int], value: float) -> pa.Table:
    return pa.table({"k": pa.array(keys, pa.int64()), "v": pa.array([value] * len(keys))})


def keys_of(dataset: object) -> list[int]:
    return sorted(dataset.to_table().column("k").to_pylist())  # type: ignore[attr-defined]


def test_rows_removed_and_added_rows_per_kind_of_commit(tmp_path: Path) -> None:
    store = DeltaOfflineStore(str(tmp_path))
    assert store.write("t", rows([1, 2], 1.0)) == 0
    assert store.write("t", rows([3], 1.0)) == 1  # append
    assert store.write("t", rows([4, 5], 1.0), merge_keys=["k"]) == 2  # upsert of new keys only
    assert store.write("t", rows([5, 6], 2.0), merge_keys=["k"]) == 3  # replaces key 5
    assert store.delete_rows("t", pa.table({"k": pa.array([1], pa.int64())})) == 4
    assert store.add_columns("t", [pa.field("w", pa.float64())]) == 5
    compacted = store.compact("t")
    assert compacted == 6
    removed = {c.version: c.rows_removed for c in store.history("t")}
    assert removed == {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 0, 6: 0}
    assert [c.version for c in store.history("t", since=5)] == [5, 6]
    assert store.history("t", since=7) == []

    assert keys_of(store.added_rows("t", 0, 1)) == [3]
    assert keys_of(store.added_rows("t", 0, 2)) == [3, 4, 5]
    assert store.added_rows("t", 2, 3) is None  # the upsert rewrote the file holding key 5
    assert store.added_rows("t", 3, 4) is None  # the delete rewrote a file
    assert keys_of(store.added_rows("t", 4, 5)) == []  # a schema change adds no row
    assert store.added_rows("t", 5, 6) is None  # compaction rewrote every file
    assert store.added_rows("t", 1, 1) is None
    store.vacuum("t", timedelta(0))
    vacuumed = {c.version: c.rows_removed for c in store.history("t", since=7)}
    assert vacuumed == {7: 0, 8: 0}
