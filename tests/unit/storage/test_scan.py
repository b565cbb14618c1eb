"""Pull-based reading of offline tables: same rows as a dataset scan, pruned and time-filtered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from fti.storage.offline.delta import DeltaOfflineStore
from fti.storage.offline.scan import iter_batches, time_condition

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def table(start: int, rows: int) -> pa.Table:
    ids = np.arange(start, start + rows, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "ts": pa.array([T0 + timedelta(minutes=int(i)) for i in ids], pa.timestamp("us", tz="UTC")),
            "x": ids * 0.5,
        }
    )


def test_batches_match_a_filtered_scan_and_added_columns_read_as_nulls(tmp_path: Path) -> None:
    store = DeltaOfflineStore(str(tmp_path))
    store.write("t", table(0, 1000))
    store.write("t", table(1000, 500))
    store.add_columns("t", [pa.field("y", pa.float64())])  # files written before lack it
    store.write("t", table(1500, 300).append_column("y", pa.array(np.ones(300))))
    dataset = store.dataset("t")
    for start, end in [(None, None), (T0 + timedelta(minutes=990), T0 + timedelta(minutes=1600)), (T0, None)]:
        batches = list(
            iter_batches(dataset, ["ts", "id", "y"], time_column="ts", start=start, end=end, batch_rows=128)
        )
        assert all(0 < b.num_rows <= 128 for b in batches)
        assert all(b.schema.names == ["ts", "id", "y"] for b in batches)
        got = pa.Table.from_batches(batches).sort_by("id")
        expected = dataset.to_table(
            columns=["ts", "id", "y"], filter=time_condition("ts", start, end)
        ).sort_by("id")
        assert got.equals(expected)
    window = pa.Table.from_batches(
        list(
            iter_batches(
                dataset,
                ["id", "y"],
                time_column="ts",
                start=T0 + timedelta(minutes=1490),
                end=T0 + timedelta(minutes=1510),
            )
        )
    ).sort_by("id")
    assert window.column("id").to_pylist() == list(range(1490, 1510))
    assert window.column("y").to_pylist() == [None] * 10 + [1.0] * 10


def test_in_memory_tables_and_other_datasets_are_read_too() -> None:
    data = table(0, 50)
    end = T0 + timedelta(minutes=20)
    from_table = pa.Table.from_batches(
        list(iter_batches(data, ["id"], time_column="ts", end=end, batch_rows=7))
    )
    assert from_table.column("id").to_pylist() == list(range(20))
    from_memory = list(iter_batches(ds.dataset(data), ["x", "id"], time_column="ts", start=end))
    assert pa.Table.from_batches(from_memory).column("id").to_pylist() == list(range(20, 50))
