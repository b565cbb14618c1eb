"""Pull-based reading of an offline table: one batch at a time, no read-ahead.

Arrow's dataset scanner decodes ahead of its consumer into a queue whose back-pressure is far
above one batch: a slow consumer (a model scoring each batch) finds most of a 2M-row table
decoded in memory. :func:`iter_batches` reads the data files one after another, only the row
groups whose statistics can match the time range, through ``ParquetFile.iter_batches``, so at
most one batch is decoded beyond what the consumer holds; it is also faster than the scanner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fti.storage.offline.base import OfflineStore

READ_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True)
class LocalFiles:
    """One version of an offline table whose data files are plain Parquet files on local disk.

    :func:`iter_batches` reads them without Arrow's dataset layer, whose import alone loads pandas
    (about 0.1 s of a batch job's start); query engines get the store's own dataset of the same
    version from :func:`as_dataset`.
    """

    paths: tuple[str, ...]
    schema: pa.Schema
    open_dataset: Callable[[], ds.Dataset]


def table_source(offline: OfflineStore, table: str, version: int | None = None) -> Any:
    """``table`` at ``version`` (None = latest) for reading: its :class:`LocalFiles` when it can
    be read as plain files, else the store's dataset; None when the table does not exist."""
    if version is None:
        version = offline.version(table)
        if version is None:
            return None
    files = offline.local_files(table, version)
    return files if files is not None else offline.dataset(table, version=version)


def count_rows(source: Any, time_column: str | None, start: datetime | None, end: datetime | None) -> int:
    """The rows of ``source`` (as for :func:`iter_batches`) with ``start <= time_column < end``.

    Local files are counted from their footers when the range is unbounded, else by reading only
    the time column of the row groups their statistics cannot rule out.
    """
    import pyarrow as pa

    bounded = time_column is not None and (start is not None or end is not None)
    if isinstance(source, pa.Table) and not bounded:
        return int(source.num_rows)
    if isinstance(source, LocalFiles) and not bounded:
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(path).metadata.num_rows for path in source.paths)
    if isinstance(source, (pa.Table, LocalFiles)):
        batches = iter_batches(source, [str(time_column)], time_column=time_column, start=start, end=end)
        return sum(batch.num_rows for batch in batches)
    return int(source.count_rows(filter=time_condition(time_column, start, end)))


def as_dataset(source: Any) -> Any:
    """``source`` as an Arrow table or dataset (what DuckDB and Arrow's scanner take)."""
    return source.open_dataset() if isinstance(source, LocalFiles) else source


def iter_batches(
    source: Any,
    columns: Sequence[str],
    *,
    time_column: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    batch_rows: int = 65_536,
) -> Iterator[pa.RecordBatch]:
    """The rows of ``source`` (an Arrow table, a Parquet dataset or :class:`LocalFiles`) with
    ``start <= time_column < end``, as record batches of at most ``batch_rows`` rows holding
    ``columns`` in that order.

    Columns a data file lacks (added to the table after it was written) read as nulls.
    """
    import pyarrow as pa

    names = list(columns)
    bounded = time_column is not None and (start is not None or end is not None)
    read = (
        [*names, time_column] if time_column is not None and bounded and time_column not in names else names
    )
    span = (time_column, start, end) if time_column is not None and bounded else None
    batches: Iterator[pa.RecordBatch]
    if isinstance(source, pa.Table):
        batches = iter(source.select(read).to_batches(max_chunksize=batch_rows))
    elif isinstance(source, LocalFiles):
        files = (nullcontext(path) for path in source.paths)
        batches = _parquet_batches(files, source.schema, read, span, batch_rows)
    else:
        import pyarrow.dataset as ds

        if isinstance(source, ds.FileSystemDataset) and isinstance(source.format, ds.ParquetFileFormat):
            fragments = (fragment.open() for fragment in source.get_fragments())
            batches = _parquet_batches(fragments, source.schema, read, span, batch_rows)
        else:
            batches = iter(source.to_batches(columns=read, batch_size=batch_rows))
    for batch in batches:
        kept = _filtered(batch, time_column, start, end) if bounded else batch
        if kept.num_rows:
            yield kept if read is names else kept.select(names)


def _parquet_batches(
    files: Iterator[AbstractContextManager[Any]],
    table_schema: pa.Schema,
    names: list[str],
    span: tuple[str, datetime | None, datetime | None] | None,
    batch_rows: int,
) -> Iterator[pa.RecordBatch]:
    """The Parquet ``files`` (each a context giving a path or an open file) one after another, only
    the row groups whose statistics can hold a time in ``span``, each read page by page."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([table_schema.field(n) for n in names])
    for opened in files:
        with opened as handle:
            file = pq.ParquetFile(handle, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
            row_groups = _row_groups(file, span)
            if not row_groups:
                continue
            present = [n for n in names if n in file.schema_arrow.names]
            for batch in file.iter_batches(batch_rows, row_groups=row_groups, columns=present):
                yield _conform(batch, schema)


def _row_groups(file: Any, span: tuple[str, datetime | None, datetime | None] | None) -> list[int]:
    """The row groups of ``file`` whose min/max statistics of the time column can overlap
    ``[start, end)``; every row group when there is no span or no usable statistics."""
    import pyarrow as pa

    metadata = file.metadata
    every = list(range(metadata.num_row_groups))
    if span is None:
        return every
    column, start, end = span
    paths = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    if column not in paths:
        return every
    index = paths.index(column)
    kind = file.schema_arrow.field(column).type
    if not pa.types.is_timestamp(kind):
        return every
    low = None if start is None else _ticks(start, kind.unit)
    high = None if end is None else _ticks(end, kind.unit)
    kept = []
    for group in every:
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.min_raw, int):
            kept.append(group)  # no usable statistics (or legacy INT96 times): read it
        elif not ((low is not None and stats.max_raw < low) or (high is not None and stats.min_raw >= high)):
            kept.append(group)
    return kept


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with the table's columns and types: missing columns as nulls, others cast."""
    import pyarrow as pa

    if batch.schema == schema:
        return batch
    arrays = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            arrays.append(pa.nulls(batch.num_rows, field.type))
        else:
            column = batch.column(index)
            arrays.append(column if column.type == field.type else column.cast(field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _filtered(
    batch: pa.RecordBatch, time_column: Any, start: datetime | None, end: datetime | None
) -> pa.RecordBatch:
    """``batch`` without the rows outside ``[start, end)`` (row groups are pruned only roughly).

    Compared in numpy on the column's integer ticks: turning a datetime into an Arrow scalar
    imports pandas."""
    import numpy as np

    from fti._buffers import integer_view, to_arrow

    times = batch.column(time_column)
    ticks = integer_view(times)
    keep = np.ones(len(times), dtype=bool)
    if start is not None:
        keep &= ticks >= _ticks(start, times.type.unit)
    if end is not None:
        keep &= ticks < _ticks(end, times.type.unit)
    if times.null_count:  # a null time is in no range
        bits = np.unpackbits(np.frombuffer(times.buffers()[0], dtype=np.uint8), bitorder="little")
        keep &= bits[times.offset : times.offset + len(times)].astype(bool)
    if keep.all():
        return batch
    return batch.take(to_arrow(np.flatnonzero(keep).astype(np.int64)))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PER_MICROSECOND = {"s": 1_000_000, "ms": 1_000, "us": 1}


def _ticks(value: datetime, unit: str) -> int:
    """``value`` in ``unit`` ticks since the epoch, rounded up: for integer times ``t``,
    ``t >= value`` and ``t < value`` hold exactly when they hold for the result. Computed here
    because converting a datetime to an Arrow scalar imports pandas."""
    micros = (value - _EPOCH) // timedelta(microseconds=1)
    if unit == "ns":
        return micros * 1_000
    return -(-micros // _PER_MICROSECOND[unit])


def time_condition(time_column: str | None, start: datetime | None, end: datetime | None) -> Any:
    """The dataset filter expression ``start <= time_column < end`` (None when unbounded)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    condition = None
    if time_column is not None:
        ts_type = pa.timestamp("us", tz="UTC")
        if start is not None:
            condition = ds.field(time_column) >= pa.scalar(start, ts_type)
        if end is not None:
            upper = ds.field(time_column) < pa.scalar(end, ts_type)
            condition = upper if condition is None else condition & upper
    return condition
