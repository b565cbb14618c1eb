"""Small Arrow helpers of the streaming path: Arrow IPC payloads and last-row-per-key selection.

Kept free of DuckDB and pandas: they run for every push and every stream batch, where a few
hundred rows must cost microseconds, not a query engine's start-up.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc


def encode(table: pa.Table) -> bytes:
    """``table`` as Arrow IPC stream bytes (types, time zones and nulls exactly as they are)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode(payload: bytes) -> pa.Table:
    """The table :func:`encode` wrote."""
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


def last_per_key(table: pa.Table, keys: Sequence[str], order: str | None = None) -> pa.Table:
    """One row per distinct ``keys`` tuple: the one with the greatest ``order`` value, the last in
    table order among equals (or the last in table order without ``order``)."""
    if table.num_rows <= 1:
        return table
    index = pa.array(range(table.num_rows), pa.int64())
    columns = [*keys, *([order] if order else [])]
    sort_keys = [(c, "ascending") for c in columns]
    sortable = pa.table([*(table.column(c) for c in columns), index], names=[*columns, "__fti_i"])
    ordered = pc.sort_indices(sortable, sort_keys=[*sort_keys, ("__fti_i", "ascending")])
    sorted_keys = sortable.take(ordered)
    n = table.num_rows
    # the last row of each key group is where the next row's key differs (and the final row)
    last = pa.array([False] * (n - 1) + [True])
    for name in keys:
        column = sorted_keys.column(name).combine_chunks()
        differs = pc.fill_null(pc.not_equal(column.slice(0, n - 1), column.slice(1)), True)
        last = pc.or_(last, pa.concat_arrays([differs, pa.array([True])]))
    return table.take(pc.filter(ordered, last))
