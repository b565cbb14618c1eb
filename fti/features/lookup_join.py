"""The point-in-time join streamed spine batch by batch: a lookup join, in bounded memory.

What :func:`fti.features.pit.stream` runs when a query joins groups (batch scoring,
``fv.iter_batch_data``). The spine is read batch by batch (:func:`fti.features.pit.spine_reader`:
projection and time filter pushed down, no read-ahead); each joined group is read once, into
memory, and indexed by key and event time (:class:`~fti.features.asof.PartLookup`); each spine
batch then picks its rows of every group with numpy look-ups and takes their columns with Arrow,
so memory holds the groups and one batch, whatever the spine's row count. DuckDB's ``ASOF JOIN``
over the whole range (:func:`fti.features.pit.run`) instead sorts the wide intermediate result of
every spine row before it returns the first one: batch scoring a 10M-row spine joined with two
groups of 50 features each peaked at 7.6 GB that way, and at 1.25 GB this way.

The rows, columns, names and values are those of :func:`fti.features.pit.build_sql` (without
``ORDER BY``; here in the order the spine's rows are stored): the rules of the join are
:class:`~fti.features.asof.PartLookup`'s, and a view's filter is the same SQL ``WHERE``, evaluated by
DuckDB on each batch's joined rows. Column types are those DuckDB gives for the same sources, so
the stream and a whole read (:func:`fti.features.pit.run`) agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.asof import PartLookup
    from fti.features.query import Query

_ROW = "__fti_row"
"""The position of a spine row in its batch, for the filter's answer."""


def stream(
    query: Query,
    sources: Sequence[Any],
    *,
    batch_rows: int,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """The joined rows of ``query`` over ``sources`` (one per part, see :func:`fti.features.pit.run`)
    with spine event time in ``[start_time, end_time)``, one record batch per spine batch of at
    most ``batch_rows`` rows (fewer where an inner join or the filter drops rows).

    ``threads`` and ``memory_limit`` configure the DuckDB connection that evaluates the query's
    filter (none is opened without one).
    """
    import pyarrow as pa

    from fti._duckdb import connect
    from fti.features import pit
    from fti.features.asof import micros

    spine_time = query.spine.event_time
    parts = _lookups(query, sources)
    schema = _schema(query, sources, parts)
    con = connect(threads=threads, memory_limit=memory_limit) if query.condition is not None else None
    try:
        if con is not None:
            con.execute("SET TimeZone = 'UTC'")
        for batch in pit.spine_reader(query, sources[0], start_time, end_time, batch_rows):
            moments = None if spine_time is None else micros(batch.column(spine_time))
            keep = np.ones(batch.num_rows, dtype=bool)
            picked: dict[int, tuple[Any, Any]] = {}
            for index, (lookup, _) in parts.items():
                found_rows, found, valid = lookup.pick(batch, moments)
                if lookup.part.join_type == "inner":
                    keep &= found
                picked[index] = (_indices(found_rows, found), _indices(found_rows, valid))
            if con is not None:
                keep &= _matches(con, query, batch, parts, picked)
            joined = _assemble(query, batch, parts, picked, schema)
            yield joined if keep.all() else joined.filter(pa.array(keep))
    finally:
        if con is not None:
            con.close()


def _lookups(query: Query, sources: Sequence[Any]) -> dict[int, tuple[PartLookup, pa.Table]]:
    """Every joined group's needed columns in memory, with its :class:`PartLookup`."""
    import pyarrow as pa

    from fti.features import pit
    from fti.features.asof import PartLookup
    from fti.storage.offline.scan import as_dataset

    filtered = pit.filter_columns(query)
    parts = {}
    for index, part in enumerate(query.parts[1:], start=1):
        group_time = part.group.event_time
        needed = [
            *part.on,
            *([group_time] if group_time else []),
            *(c.column for c in query.columns() if c.part == index),
            *filtered.get(index, []),
        ]
        columns, source = list(dict.fromkeys(needed)), as_dataset(sources[index])
        rows = source.select(columns) if isinstance(source, pa.Table) else source.to_table(columns=columns)
        # one chunk: Arrow's take over a chunked column is much slower than over one array
        rows = rows.combine_chunks()
        parts[index] = (PartLookup(part, rows, query.spine.event_time), rows)
    return parts


def _indices(rows: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Row numbers to take, null (a null value taken) where ``valid`` is False."""
    import pyarrow as pa

    return pa.array(np.where(valid, rows, 0), mask=~valid)


def _assemble(
    query: Query,
    batch: pa.RecordBatch,
    parts: dict[int, tuple[PartLookup, pa.Table]],
    picked: dict[int, tuple[pa.Array, pa.Array]],
    schema: pa.Schema,
) -> pa.RecordBatch:
    """The joined columns of ``batch``, in :func:`fti.features.pit.build_sql`'s order and types."""
    import pyarrow as pa

    keys = query.key_columns()
    columns = [batch.column(k) for k in keys]
    taken: dict[int, pa.Table] = {}
    for column in query.columns():
        if column.part == 0:
            if column.name not in keys:
                columns.append(batch.column(column.column))
            continue
        if column.part not in taken:  # all of a part's columns in one take
            names = [c.column for c in query.columns() if c.part == column.part]
            taken[column.part] = parts[column.part][1].select(names).take(picked[column.part][1])
        values = taken[column.part].column(column.column)
        columns.append(values.chunk(0) if values.num_chunks == 1 else values.combine_chunks())
    return pa.RecordBatch.from_arrays(
        [c if c.type == f.type else c.cast(f.type) for c, f in zip(columns, schema, strict=True)],
        schema=schema,
    )


def _matches(
    con: Any,
    query: Query,
    batch: pa.RecordBatch,
    parts: dict[int, tuple[PartLookup, pa.Table]],
    picked: dict[int, tuple[pa.Array, pa.Array]],
) -> np.ndarray:
    """Which rows of ``batch`` the query's filter keeps: its SQL over the spine row and the row
    each group gives it (null where there is none; older than ``max_age`` counts, as in
    :func:`fti.features.pit.build_sql`), the tables lined up by position."""
    import pyarrow as pa

    from fti._duckdb import quote as q
    from fti.features import pit

    assert query.condition is not None
    clause, params = query.condition.sql(lambda name, version: pit.part_alias(query, name, version))
    filtered = {i: list(dict.fromkeys(names)) for i, names in pit.filter_columns(query).items()}
    spine = pa.table(
        [*(batch.column(c) for c in filtered.get(0, [])), pa.array(np.arange(batch.num_rows))],
        names=[*filtered.get(0, []), _ROW],
    )
    con.register(pit.SPINE, spine)
    tables = [pit.SPINE]
    for index in sorted(i for i in filtered if i):
        alias = f"j{index}"
        con.register(alias, parts[index][1].select(filtered[index]).take(picked[index][0]))
        tables.append(alias)
    sql = f"SELECT {pit.SPINE}.{q(_ROW)} FROM {' POSITIONAL JOIN '.join(tables)} WHERE {clause}"
    kept = con.execute(sql, params).fetchnumpy()[_ROW]
    mask = np.zeros(batch.num_rows, dtype=bool)
    mask[np.asarray(kept, dtype=np.int64)] = True
    return mask


def _schema(query: Query, sources: Sequence[Any], parts: dict[int, tuple[PartLookup, pa.Table]]) -> pa.Schema:
    """The result's schema as DuckDB gives it for these sources: the same SQL over empty tables of
    their schemas."""
    from fti._duckdb import connect, fetch_arrow
    from fti.features import pit

    con = connect(threads=1)
    try:
        con.execute("SET TimeZone = 'UTC'")
        empty = [sources[0].schema.empty_table().select(pit.spine_columns(query))]
        empty += [parts[i][1].schema.empty_table() for i in range(1, len(query.parts))]
        for index, table in enumerate(empty):
            con.register(pit.source_name(index), table)
        sql, params = pit.build_sql(query, order=False)
        return fetch_arrow(con, sql, params).schema
    finally:
        con.close()
