"""Pull-based reading of offline tables: same rows as a dataset scan, pruned and time-filtered."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from fti.storage.offline.delta import DeltaOfflineStore
from fti.storage.offline.scan import (
    LocalFiles,
    _row_groups,
    as_dataset,
    count_rows,
    iter_batches,
    table_source,
    time_condition,
)

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


@pytest.mark.parametrize("kind", ["dataset", "local files"])
def test_batches_match_a_filtered_scan_and_added_columns_read_as_nulls(tmp_path: Path, kind: str) -> None:
    store = DeltaOfflineStore(str(tmp_path))
    store.write("t", table(0, 1000))
    store.write("t", table(1000, 500))
    store.add_columns("t", [pa.field("y", pa.float64())])  # files written before lack it
    version = store.write("t", table(1500, 300).append_column("y", pa.array(np.ones(300))))
    dataset = store.dataset("t")
    files = store.local_files("t", version)
    assert files is not None and len(files.paths) == 3
    source = dataset if kind == "dataset" else files
    for start, end in [(None, None), (T0 + timedelta(minutes=990), T0 + timedelta(minutes=1600)), (T0, None)]:
        batches = list(
            iter_batches(source, ["ts", "id", "y"], time_column="ts", start=start, end=end, batch_rows=128)
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
                source,
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


def test_row_groups_outside_the_window_are_skipped_by_their_statistics(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(table(0, 1000), path, row_group_size=100)  # row group g holds minutes 100g..100g+99
    file = pq.ParquetFile(path)
    assert _row_groups(file, None) == list(range(10))
    assert _row_groups(file, ("ts", T0 + timedelta(minutes=250), T0 + timedelta(minutes=400))) == [2, 3]
    assert _row_groups(file, ("ts", T0 + timedelta(minutes=900), None)) == [9]
    assert _row_groups(file, ("ts", None, T0 + timedelta(minutes=100))) == [0]
    assert _row_groups(file, ("ts", T0 + timedelta(days=30), None)) == []
    assert _row_groups(file, ("id", T0, None)) == list(range(10))  # not a time column: no pruning
    files = LocalFiles((str(path),), file.schema_arrow, lambda: ds.dataset(str(path)))
    window = pa.Table.from_batches(
        list(
            iter_batches(
                files,
                ["id"],
                time_column="ts",
                start=T0 + timedelta(minutes=250),
                end=T0 + timedelta(minutes=260),
            )
        )
    )
    assert window.column("id").to_pylist() == list(range(250, 260))


def test_local_files_of_a_version_and_their_dataset(tmp_path: Path) -> None:
    store = DeltaOfflineStore(str(tmp_path))
    first = store.write("t", table(0, 10))
    store.write("t", table(10, 5))
    files = store.local_files("t", first)  # time travel: the files of version 0 only
    assert files is not None and len(files.paths) == 1 and Path(files.paths[0]).is_file()
    assert files.schema == store.dataset("t").schema
    assert as_dataset(files).to_table().column("id").to_pylist() == list(range(10))
    assert as_dataset(files.schema.empty_table()).num_rows == 0  # tables and datasets pass through
    assert DeltaOfflineStore("s3://bucket/offline").local_files("t", 0) is None  # objects: no local files


def test_counts_match_a_filtered_dataset_count_for_every_kind_of_source(tmp_path: Path) -> None:
    store = DeltaOfflineStore(str(tmp_path))
    assert table_source(store, "t") is None  # no table yet
    store.write("t", table(0, 1000))
    store.write("t", table(1000, 500))
    files = table_source(store, "t")
    assert isinstance(files, LocalFiles)
    dataset = store.dataset("t")
    windows = [
        (None, None),
        (T0 + timedelta(minutes=990), T0 + timedelta(minutes=1010)),
        (T0 + timedelta(minutes=1200), None),
        (None, T0),
        (T0 + timedelta(days=5), None),
    ]
    for start, end in windows:
        expected = dataset.count_rows(filter=time_condition("ts", start, end))
        for source in (files, dataset, dataset.to_table()):
            assert count_rows(source, "ts", start, end) == expected, (type(source), start, end)
    assert count_rows(files, None, None, None) == 1500
    assert [count_rows(table_source(store, "t", v), "ts", None, None) for v in (0, 1)] == [1000, 1500]


def test_a_table_whose_readers_need_more_than_its_files_is_read_through_its_dataset(tmp_path: Path) -> None:
    from deltalake import write_deltalake

    store = DeltaOfflineStore(str(tmp_path))
    # deletion vectors need reader protocol 3: the Parquet files alone may hold deleted rows
    write_deltalake(str(tmp_path / "dv"), table(0, 5), configuration={"delta.enableDeletionVectors": "true"})
    assert store.local_files("dv", 0) is None
    assert store.local_files("t", store.write("t", table(0, 5))) is not None


def test_streaming_and_counting_a_view_without_joins_load_neither_pandas_nor_the_dataset_layer(
    tmp_path: Path,
) -> None:
    """Arrow's dataset layer imports pandas: a batch job's reader and its row counts avoid both."""
    setup = textwrap.dedent(
        f"""
        from datetime import UTC, datetime, timedelta
        import pyarrow as pa
        import fti
        project = fti.connect(home={str(tmp_path)!r})
        group = project.feature_store.get_or_create_feature_group("g", primary_key=["id"], event_time="ts")
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        group.insert(pa.table({{"id": list(range(100)), "ts": [t0 + timedelta(hours=i) for i in range(100)],
                               "x": [float(i) for i in range(100)]}}))
        project.feature_store.get_or_create_feature_view("v", query=group.select_all(include_primary_key=False, include_event_time=False))
        """
    )
    subprocess.run([sys.executable, "-c", setup], check=True)
    stream = textwrap.dedent(
        f"""
        import sys
        from datetime import UTC, datetime, timedelta
        import fti
        project = fti.connect(home={str(tmp_path)!r})
        view = project.feature_store.get_feature_view("v")
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        batches = view.iter_batch_data(t0 + timedelta(hours=10), t0 + timedelta(hours=70), batch_rows=25, with_keys=True)
        ids = [i for b in batches for i in b.column("id").to_pylist()]
        assert ids == list(range(10, 70)), ids
        from fti.storage.offline.scan import count_rows, table_source
        source = table_source(project.backends.offline, view.query.spine.table_name)
        assert count_rows(source, "ts", t0 + timedelta(hours=10), None) == 90
        print(sorted(m for m in ("pandas", "pyarrow.dataset") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", stream], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_the_time_filter_is_exact_in_every_unit_and_drops_null_times(unit: str) -> None:
    from fti.storage.offline.scan import _filtered

    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    base = int(T0.timestamp()) * per_second
    values: list[int | None] = [base + i * per_second // 4 for i in range(40)]  # quarter seconds
    values[7] = None
    batch = pa.RecordBatch.from_arrays(
        [pa.array(values, pa.timestamp(unit, tz="UTC")), pa.array(range(40))], names=["ts", "i"]
    ).slice(3)  # an offset into the buffers

    def nanos(when: datetime) -> int:  # exact, for the expected rows
        return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1_000

    for start, end in [
        (T0 + timedelta(seconds=2), T0 + timedelta(seconds=5, microseconds=250_001)),
        (T0 + timedelta(microseconds=1), None),
        (None, T0 + timedelta(seconds=3)),
        (T0 - timedelta(days=1), T0 + timedelta(days=1)),
    ]:
        expected = [
            i
            for i, v in enumerate(values)
            if i >= 3
            and v is not None
            and (start is None or v * (10**9 // per_second) >= nanos(start))
            and (end is None or v * (10**9 // per_second) < nanos(end))
        ]
        assert _filtered(batch, "ts", start, end).column("i").to_pylist() == expected
        assert 7 not in expected
