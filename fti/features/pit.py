"""Point-in-time-correct joins: SQL generation for DuckDB's ``ASOF LEFT JOIN``.

For each spine row, every joined group contributes its latest row whose event time is <= the
spine row's event time (ARCHITECTURE.md invariant 1, "no leakage"), or nulls when it has none or
when that row is older than the group's ``max_age``. Spine rows are never dropped. Groups
without an event time join on key only; when the spine has no event time, every joined group
contributes its latest row per key.

The generated SQL runs directly on the groups' Delta snapshots: DuckDB reads a snapshot's
Parquet files itself when they are plain local files (about twice as fast as scanning them through
an Arrow dataset), else the store's Arrow dataset; it streams and parallelises the whole join and
there is no Python row loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti._duckdb import quote as q

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.query import Query

SPINE = "s"
RANK = "__fti_spine_rank"
"""With ``order``, the spine source carries each row's rank: by (event time, primary key), or for a
spine without event time its position in the spine source (the order the rows were written)."""


def source_name(index: int) -> str:
    """The name a query part's data is registered under in DuckDB."""
    return f"fti_src_{index}"


def build_sql(
    query: Query,
    *,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    order: bool = True,
) -> tuple[str, list[Any]]:
    """The SQL (and its parameters) of the point-in-time join of ``query``.

    The result has the spine's primary key and event time first, then every selected column
    under its output name. Sources are registered as :func:`source_name` ``(i)``. With
    ``order``, rows come sorted by spine event time then primary key, or for a spine without event
    time in the order its rows were written (deterministic output);
    the spine source must then hold that rank in a :data:`RANK` column (see :func:`run`).
    ``start_time`` is inclusive and ``end_time`` exclusive, both on the spine's event time.
    """
    spine = query.spine
    spine_ts = spine.event_time
    select: list[str] = [f"{SPINE}.{q(k)}" for k in query.key_columns()]
    keys_selected = set(query.key_columns())
    joins: list[str] = []
    for index, column, name in ((c.part, c.column, c.name) for c in query.columns()):
        if index == 0:
            if name not in keys_selected:
                select.append(f"{SPINE}.{q(column)} AS {q(name)}")
            continue
        select.append(f"{_value(query, index, column)} AS {q(name)}")

    filtered = filter_columns(query)
    for index, part in enumerate(query.parts[1:], start=1):
        alias = f"j{index}"
        group = part.group
        needed = list(
            dict.fromkeys(
                [
                    *part.on,
                    *([group.event_time] if group.event_time else []),
                    *part.features,
                    *filtered.get(index, []),
                ]
            )
        )
        cols = ", ".join(q(c) for c in needed)
        condition = " AND ".join(
            f"{SPINE}.{q(left)} = {alias}.{q(k)}" for left, k in zip(part.spine_on, part.on, strict=True)
        )
        kind = "" if part.join_type == "inner" else "LEFT "
        if group.event_time is not None and spine_ts is not None:
            source = f"(SELECT {cols} FROM {source_name(index)})"
            condition += f" AND {SPINE}.{q(spine_ts)} >= {alias}.{q(group.event_time)}"
            joins.append(f"ASOF {kind}JOIN {source} AS {alias} ON {condition}")
        elif group.event_time is not None:  # no spine time: the latest row per key
            partition = ", ".join(q(k) for k in part.on)
            source = (
                f"(SELECT {cols} FROM {source_name(index)} QUALIFY row_number() OVER "
                f"(PARTITION BY {partition} ORDER BY {q(group.event_time)} DESC) = 1)"
            )
            joins.append(f"{kind}JOIN {source} AS {alias} ON {condition}")
        else:
            joins.append(f"{kind}JOIN (SELECT {cols} FROM {source_name(index)}) AS {alias} ON {condition}")

    where: list[str] = []
    params: list[Any] = []
    if query.condition is not None:
        clause, bound = query.condition.sql(lambda name, version: part_alias(query, name, version))
        where.append(clause)
        params.extend(bound)
    if start_time is not None:
        assert spine_ts is not None
        where.append(f"{SPINE}.{q(spine_ts)} >= ?")
        params.append(start_time)
    if end_time is not None:
        assert spine_ts is not None
        where.append(f"{SPINE}.{q(spine_ts)} < ?")
        params.append(end_time)
    sql = f"SELECT {', '.join(select)} FROM {source_name(0)} AS {SPINE} " + " ".join(joins)
    if where:
        sql += " WHERE " + " AND ".join(where)
    if order:
        sql += f" ORDER BY {SPINE}.{q(RANK)}"
    return sql, params


def _value(query: Query, index: int, column: str) -> str:
    """``column`` of joined part ``index``: null when the row picked is older than its max age."""
    part, spine_ts, alias = query.parts[index], query.spine.event_time, f"j{index}"
    value = f"{alias}.{q(column)}"
    if part.max_age is not None and spine_ts is not None:
        assert part.group.event_time is not None
        limit = part.max_age // timedelta(microseconds=1)  # exact: no float seconds
        age = f"epoch_us({SPINE}.{q(spine_ts)}) - epoch_us({alias}.{q(part.group.event_time)})"
        value = f"CASE WHEN {age} <= {limit} THEN {value} END"
    return value


def part_alias(query: Query, group: str, version: int) -> str:
    """The SQL alias of the first part of ``query`` reading ``group`` at ``version``."""
    for index, part in enumerate(query.parts):
        if (part.group.name, part.group.version) == (group, version):
            return SPINE if index == 0 else f"j{index}"
    raise AssertionError(f"{group} v{version} is not in the query")  # Query.filter checked it


def filter_columns(query: Query) -> dict[int, list[str]]:
    """The columns the query's filter reads, by part index (to load them with each source)."""
    found: dict[int, list[str]] = {}
    if query.condition is None:
        return found
    for group, version, column in query.condition.columns():
        index = next(
            i for i, p in enumerate(query.parts) if (p.group.name, p.group.version) == (group, version)
        )
        found.setdefault(index, []).append(column)
    return found


def _order_keys(query: Query) -> list[str]:
    spine = query.spine
    return [*([spine.event_time] if spine.event_time else []), *spine.primary_key]


def run(
    query: Query,
    sources: Sequence[Any],
    *,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    order: bool = True,
) -> pa.Table:
    """Execute the point-in-time join of ``query`` over ``sources`` (one Arrow table, dataset or
    :class:`~fti.storage.offline.scan.LocalFiles` per query part, in part order) and return the
    result as one Arrow table."""
    from fti._duckdb import connect, fetch_arrow

    con = connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for index, source in enumerate(sources[1:], start=1):
            register(con, source_name(index), source)
        # A spine of plain Parquet files is read, filtered and (by event time and key) sorted by
        # DuckDB itself: at 5M rows a quarter less CPU and memory than loading it into Arrow to
        # rank it. Only a spine without event time needs the rank (the order rows were written).
        if (not order or query.spine.event_time is not None) and _parquet_view(
            con, source_name(0), sources[0]
        ):
            sql, params = build_sql(query, start_time=start_time, end_time=end_time, order=False)
            if order:
                sql += " ORDER BY " + ", ".join(f"{SPINE}.{q(k)}" for k in _order_keys(query))
            result = fetch_arrow(con, sql, params)
            if not order or not _has_ties(result, _order_keys(query)):
                return result
            # Rows with equal time and key (appended twice): only the rank keeps them in the
            # order they were written, so the result stays deterministic.
            del result
            con.execute(f"DROP VIEW {source_name(0)}")
        sql, params = build_sql(query, start_time=start_time, end_time=end_time, order=order)
        con.register(source_name(0), _ranked_spine(query, sources[0], start_time, end_time, order))
        return fetch_arrow(con, sql, params)
    finally:
        con.close()


def _has_ties(table: pa.Table, keys: Sequence[str]) -> bool:
    """Whether two neighbouring rows of ``table`` are equal in all of ``keys`` (nulls equal)."""
    import pyarrow.compute as pc

    rows = table.num_rows
    if rows < 2:
        return False
    same: Any = None
    for key in keys:
        column = table.column(key)
        before, after = column.slice(0, rows - 1), column.slice(1)
        equal = pc.or_(
            pc.fill_null(pc.equal(before, after), False), pc.and_(pc.is_null(before), pc.is_null(after))
        )
        same = equal if same is None else pc.and_(same, equal)
    return bool(pc.any(same).as_py())


def _ranked_spine(
    query: Query, source: Any, start_time: datetime | None, end_time: datetime | None, order: bool
) -> pa.Table:
    """The spine as an Arrow table (see :func:`load_spine`), with ``order`` its :data:`RANK` too."""
    spine = load_spine(query, source, start_time, end_time)
    if order:
        # Sorting by one precomputed integer rank is much cheaper for DuckDB than by (time, key).
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if query.spine.event_time is None:  # the order the rows were written, the newest last
            rank = np.arange(spine.num_rows, dtype=np.int64)
        else:
            indices = pc.sort_indices(spine, sort_keys=[(k, "ascending") for k in _order_keys(query)])
            rank = np.empty(spine.num_rows, dtype=np.int64)
            rank[indices.to_numpy()] = np.arange(spine.num_rows, dtype=np.int64)
        spine = spine.append_column(RANK, pa.array(rank))
    return spine


def stream(
    query: Query,
    sources: Sequence[Any],
    *,
    batch_rows: int,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> Iterator[pa.Table]:
    """The rows of the point-in-time join of ``query`` (those of :func:`run` without ``order``) in
    tables of exactly ``batch_rows`` rows (the last one may be shorter), in the order the spine's
    rows are stored, in memory bounded by the batch and the joined groups, not the spine.

    The spine is read batch by batch and each batch looks its rows of the joined groups up
    (:mod:`fti.features.lookup_join`); a query of the spine alone is the spine's projected scan,
    renamed as :func:`build_sql` would. ``threads`` and ``memory_limit`` configure the DuckDB
    connection that evaluates a filter.
    """
    from fti.features import lookup_join

    if len(query.parts) == 1 and query.condition is None:  # the spine's projected scan is the result
        reader = spine_reader(query, sources[0], start_time, end_time, batch_rows)
        yield from rebatch((_project_spine(query, batch) for batch in reader), batch_rows)
        return
    joined = lookup_join.stream(
        query,
        sources,
        batch_rows=batch_rows,
        start_time=start_time,
        end_time=end_time,
        threads=threads,
        memory_limit=memory_limit,
    )
    yield from rebatch(joined, batch_rows)


def _project_spine(query: Query, batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of the spine scan with the columns and names :func:`build_sql` selects."""
    import pyarrow as pa

    keys = query.key_columns()
    names = [*keys, *(c.name for c in query.columns() if c.part == 0 and c.name not in keys)]
    columns = [*keys, *(c.column for c in query.columns() if c.part == 0 and c.name not in keys)]
    return pa.RecordBatch.from_arrays([batch.column(c) for c in columns], names=names)


def rebatch(batches: Any, rows: int) -> Iterator[pa.Table]:
    """Regroup a stream of record batches of any sizes into tables of exactly ``rows`` rows."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def load_spine(query: Query, source: Any, start_time: datetime | None, end_time: datetime | None) -> Any:
    """The spine as an in-memory Arrow table of the columns the join needs, time-filtered.

    DuckDB's ASOF join is pathologically slow (minutes instead of a second at 1M rows) when its
    probe side is a streaming Arrow dataset; the joined groups can stay lazy datasets. The spine is
    the size of the result anyway, so loading it costs no extra memory order.
    """
    import pyarrow as pa

    from fti.storage.offline.scan import as_dataset, time_condition

    if isinstance(source, pa.Table):
        return source
    condition = time_condition(query.spine.event_time, start_time, end_time)
    return as_dataset(source).to_table(columns=spine_columns(query), filter=condition)


def register(con: Any, name: str, source: Any) -> None:
    """Make ``source`` (see :func:`run`) queryable as ``name`` on DuckDB connection ``con``.

    Plain local Parquet files are read by DuckDB itself, much faster than through an Arrow
    dataset; columns a file lacks (added to the table after it was written) read as nulls. A
    column no file has yet, or any other source, goes through the Arrow table or dataset.
    """
    from fti.storage.offline.scan import as_dataset

    if not _parquet_view(con, name, source):
        con.register(name, as_dataset(source))


def _parquet_view(con: Any, name: str, source: Any) -> bool:
    """Register ``source`` as a view over DuckDB's ``read_parquet`` of its files when it is
    :class:`~fti.storage.offline.scan.LocalFiles` whose files hold every column of the table
    between them; False (nothing registered) otherwise."""
    from fti.storage.offline.scan import LocalFiles

    if not isinstance(source, LocalFiles) or not source.paths:
        return False
    relation = con.read_parquet(list(source.paths), union_by_name=True)
    if not set(source.schema.names) <= set(relation.columns):
        return False
    relation.create_view(name)
    return True


def spine_reader(
    query: Query, source: Any, start_time: datetime | None, end_time: datetime | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The spine's needed columns, time-filtered, pulled batch by batch (see
    :func:`fti.storage.offline.scan.iter_batches`: no read-ahead beyond one batch)."""
    from fti.storage.offline.scan import iter_batches

    return iter_batches(
        source,
        spine_columns(query),
        time_column=query.spine.event_time,
        start=start_time,
        end=end_time,
        batch_rows=min(batch_rows, 65_536),
    )


def spine_columns(query: Query) -> list[str]:
    """The spine columns a join needs."""
    needed = [*query.key_columns(), *(c.column for c in query.columns() if c.part == 0)]
    needed += [k for part in query.parts[1:] for k in part.spine_on]
    needed += filter_columns(query).get(0, [])
    return list(dict.fromkeys(needed))
