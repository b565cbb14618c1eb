"""The Parquet files the Delta offline store writes: float columns without dictionary encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fti.storage.offline.delta import DeltaOfflineStore


def frame(start: int, rows: int) -> pa.Table:
    ids = np.arange(start, start + rows, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "x": np.random.default_rng(start).normal(size=rows),
            "category": pa.array([f"c{i % 3}" for i in ids]),
        }
    )


def dictionary_encoded(path: str) -> dict[str, bool]:
    """Whether each column of the file at ``path`` has a dictionary page in its first row group."""
    metadata = pq.ParquetFile(path).metadata
    group = metadata.row_group(0)
    return {
        group.column(i).path_in_schema: group.column(i).has_dictionary_page
        for i in range(metadata.num_columns)
    }


def test_float_columns_are_written_plain_and_others_keep_dictionaries(tmp_path: Path) -> None:
    store = DeltaOfflineStore(tmp_path.as_uri())
    store.write("t", frame(0, 5_000))  # creates the table
    store.write("t", frame(5_000, 5_000))  # appends
    store.write("t", frame(9_000, 2_000), merge_keys=["id"])  # upserts (rewrites a file)
    paths = set()
    for version in (0, 1, 2):  # the files the create, the append and the merge wrote
        files = store.local_files("t", version)
        assert files is not None
        paths.update(files.paths)
    assert len(paths) == 3
    for path in paths:
        assert dictionary_encoded(path) == {"id": True, "x": False, "category": True}
    rows = store.dataset("t").to_table().sort_by("id")
    assert rows.column("id").to_pylist() == list(range(11_000))
    expected = np.concatenate(
        [
            frame(0, 5_000)["x"].to_numpy(),
            frame(5_000, 4_000)["x"].to_numpy(),
            frame(9_000, 2_000)["x"].to_numpy(),
        ]
    )
    assert np.array_equal(rows.column("x").to_numpy(), expected)
