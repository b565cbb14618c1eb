"""Pull-based reading of an offline table: one batch at a time, no read-ahead.

Arrow's dataset scanner decodes ahead of its consumer into a queue whose back-pressure is far
above one batch: a slow consumer (a model scoring each batch) finds most of a 2M-row table
decoded in memory. :func:`iter_batches` reads the data files one after another, only the row
groups whose statistics can match the time range, through ``ParquetFile.iter_batches``, so at
most one batch is decoded beyond what the consumer holds; it is also faster than the scanner.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

READ_BUFFER_BYTES = 1 << 20


def iter_batches(
    source: Any,
    columns: Sequence[str],
    *,
    time_column: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    batch_rows: int = 65_536,
) -> Iterator[pa.RecordBatch]:
    """The rows of ``source`` (an Arrow table or Parquet dataset) with ``start <= time_column < end``,
    as record batches of at most ``batch_rows`` rows holding ``columns`` in that order.

    Columns a data file lacks (added to the table after it was written) read as nulls.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    names = list(columns)
    bounded = time_column is not None and (start is not None or end is not None)
    read = (
        [*names, time_column] if time_column is not None and bounded and time_column not in names else names
    )
    if isinstance(source, pa.Table):
        batches: Iterator[pa.RecordBatch] = iter(source.select(read).to_batches(max_chunksize=batch_rows))
    elif isinstance(source, ds.FileSystemDataset) and isinstance(source.format, ds.ParquetFileFormat):
        batches = _parquet_batches(source, read, time_condition(time_column, start, end), batch_rows)
    else:
        batches = iter(source.to_batches(columns=read, batch_size=batch_rows))
    for batch in batches:
        kept = _filtered(batch, time_column, start, end) if bounded else batch
        if kept.num_rows:
            yield kept if read is names else kept.select(names)


def _parquet_batches(
    source: Any, names: list[str], condition: Any, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The files of ``source`` one after another, only the row groups whose statistics can match
    ``condition``, each read page by page."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([source.schema.field(n) for n in names])
    for fragment in source.get_fragments():
        row_groups = [
            rg.id for piece in fragment.split_by_row_group(filter=condition) for rg in piece.row_groups
        ]
        if not row_groups:
            continue
        with fragment.open() as handle:
            file = pq.ParquetFile(handle, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
            present = [n for n in names if n in file.schema_arrow.names]
            for batch in file.iter_batches(batch_rows, row_groups=row_groups, columns=present):
                yield _conform(batch, schema)


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
    """``batch`` without the rows outside ``[start, end)`` (row groups are pruned only roughly)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    times = batch.column(time_column)
    mask = None
    if start is not None:
        mask = pc.greater_equal(times, pa.scalar(start, times.type))
    if end is not None:
        upper = pc.less(times, pa.scalar(end, times.type))
        mask = upper if mask is None else pc.and_(mask, upper)
    return batch.filter(mask)


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
