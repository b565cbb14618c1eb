"""The rows of stream windows computed in batch, with DuckDB: backfills and the reference the
incremental computation (:mod:`fti.streaming.aggregator`) is tested against.

Times are integers (microseconds since the epoch) inside the queries, so window bounds are exact:

- sliding: SQL window functions ``RANGE BETWEEN size PRECEDING AND CURRENT ROW`` per key,
  ordered by time (the fraud example's formulation), one row per key and event time; with
  ``every``, the expiry times are added as probe rows and aggregated with a range join;
- hopping/tumbling: every window end (a multiple of ``every``) within ``max size`` after an
  event, up to the watermark, aggregated with a range join over ``[end - size, end)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fti._duckdb import quote as q
from fti.errors import SchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.window import Aggregation, Window

_SQL = {
    "count": "count(e.t)",
    "sum": "sum(e.{c})",
    "mean": "avg(e.{c})",
    "min": "min(e.{c})",
    "max": "max(e.{c})",
}
_OVER = {"count": "count(*)", "sum": "sum({c})", "mean": "avg({c})", "min": "min({c})", "max": "max({c})"}


def compute_windows(
    events: pa.Table,
    keys: Sequence[str],
    event_time: str,
    windows: Sequence[Window],
    aggregations: Sequence[Aggregation],
    *,
    until: Any = None,
) -> pa.Table:
    """See :func:`fti.window.compute`. The result has the key columns, the event time (the row
    time, as a UTC timestamp) and one column per window and aggregation, sorted by key and time."""
    import pyarrow as pa

    from fti._duckdb import connect, fetch_arrow

    values = list(dict.fromkeys(a.column for a in aggregations if a.column is not None))
    missing = [c for c in [*keys, event_time, *values] if c not in events.column_names]
    if missing:
        raise SchemaError(f"the events lack column(s) {missing} (they have {events.column_names})")
    con = connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("raw", events.select([*keys, event_time, *values]))
        key_list = ", ".join(q(k) for k in keys)
        value_list = "".join(f", CAST({q(c)} AS DOUBLE) AS {q(c)}" for c in values)
        con.execute(
            f"CREATE TEMP TABLE ev AS SELECT {key_list}, epoch_us({q(event_time)}) AS t{value_list} FROM raw"
        )
        watermark = con.execute("SELECT max(t) FROM ev").fetchall()[0][0]
        if until is not None:
            watermark = until if isinstance(until, int) else _micros(until)
        names = [f"{a.name}_{w.name}" for w in windows for a in aggregations]
        if watermark is None:
            empty = fetch_arrow(con, f"SELECT {key_list} FROM ev LIMIT 0")
            return _with_outputs(empty, event_time, names, aggregations, windows)
        sliding = windows[0].kind == "sliding"
        every = windows[0].every_us
        if sliding and every is None:
            sql = _sliding_sql(keys, windows, aggregations)
        else:
            _probes(con, keys, windows, every, watermark, sliding)
            sql = _probe_sql(keys, windows, aggregations, sliding)
        table = fetch_arrow(con, sql)
    finally:
        con.close()
    table = table.set_column(
        len(keys),
        pa.field(event_time, pa.timestamp("us", tz="UTC")),
        table.column(len(keys)).cast(pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    )
    return _cast(table, len(keys) + 1, windows, aggregations)


def _micros(value: Any) -> int:
    from datetime import datetime, timedelta

    if not isinstance(value, datetime) or value.tzinfo is None:
        raise SchemaError(f"until must be a tz-aware datetime, got {value!r}")
    from datetime import UTC

    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _sliding_sql(keys: Sequence[str], windows: Sequence[Window], aggregations: Sequence[Aggregation]) -> str:
    key_list = ", ".join(q(k) for k in keys)
    selects, clauses = [], []
    for i, w in enumerate(windows):
        clauses.append(
            f"w{i} AS (PARTITION BY {key_list} ORDER BY t RANGE BETWEEN {w.size_us} PRECEDING AND CURRENT ROW)"
        )
        for a in aggregations:
            selects.append(
                f"{_OVER[a.function].format(c=q(a.column or ''))} OVER w{i} AS {q(a.name + '_' + w.name)}"
            )
    # events sharing a key and time are peers: one row for them
    return (
        f"SELECT DISTINCT ON ({key_list}, t) {key_list}, t, {', '.join(selects)} FROM ev "
        f"WINDOW {', '.join(clauses)} ORDER BY {key_list}, t"
    )


def _probes(
    con: Any, keys: Sequence[str], windows: Sequence[Window], every: int | None, watermark: int, sliding: bool
) -> None:
    """The row times: sliding — event times and expiry times; hopping — window ends holding an event."""
    key_list = ", ".join(q(k) for k in keys)
    assert every is not None
    if sliding:
        parts = [f"SELECT {key_list}, t AS r FROM ev"] + [
            f"SELECT {key_list}, ((t + {w.size_us}) // {every} + 1) * {every} AS r FROM ev" for w in windows
        ]
        source = " UNION ".join(parts)
    else:
        size = max(w.size_us for w in windows)
        source = f"SELECT DISTINCT {key_list}, unnest(range((t // {every} + 1) * {every}, t + {size} + 1, {every})) AS r FROM ev"
    con.execute(f"CREATE TEMP TABLE probes AS SELECT DISTINCT * FROM ({source}) WHERE r <= {int(watermark)}")


def _probe_sql(
    keys: Sequence[str], windows: Sequence[Window], aggregations: Sequence[Aggregation], sliding: bool
) -> str:
    key_list = ", ".join(f"p.{q(k)}" for k in keys)
    join_keys = " AND ".join(f"e.{q(k)} = p.{q(k)}" for k in keys)
    upper = "e.t <= p.r" if sliding else "e.t < p.r"
    parts = []
    for i, w in enumerate(windows):
        aggs = ", ".join(
            f"{_SQL[a.function].format(c=q(a.column or ''))} AS {q(a.name + '_' + w.name)}"
            for a in aggregations
        )
        parts.append(
            f"(SELECT {key_list}, p.r, {aggs} FROM probes p LEFT JOIN ev e ON {join_keys} "
            f"AND e.t >= p.r - {w.size_us} AND {upper} GROUP BY ALL) AS w{i}"
        )
    select = ", ".join(
        [f"w0.{q(k)}" for k in keys]
        + ["w0.r"]
        + [f"w{i}.{q(a.name + '_' + w.name)}" for i, w in enumerate(windows) for a in aggregations]
    )
    joins = " ".join(f"JOIN {part} USING ({', '.join(q(k) for k in keys)}, r)" for part in parts[1:])
    order = ", ".join(f"w0.{q(k)}" for k in keys)
    return f"SELECT {select} FROM {parts[0]} {joins} ORDER BY {order}, w0.r"


def _cast(
    table: pa.Table, first: int, windows: Sequence[Window], aggregations: Sequence[Aggregation]
) -> pa.Table:
    """Counts as int64, every other aggregate as float64 (the stream's output types)."""
    import pyarrow as pa

    columns = list(table.columns)
    fields = list(table.schema)
    i = first
    for _ in windows:
        for a in aggregations:
            target = pa.int64() if a.function == "count" else pa.float64()
            columns[i] = columns[i].cast(target)
            fields[i] = pa.field(fields[i].name, target)
            i += 1
    return pa.table(columns, schema=pa.schema(fields))


def _with_outputs(
    empty: pa.Table,
    event_time: str,
    names: list[str],
    aggregations: Sequence[Aggregation],
    windows: Sequence[Window],
) -> pa.Table:
    import pyarrow as pa

    table = empty.append_column(
        pa.field(event_time, pa.timestamp("us", tz="UTC")), pa.array([], pa.timestamp("us", tz="UTC"))
    )
    functions = [a.function for _ in windows for a in aggregations]
    for name, function in zip(names, functions, strict=True):
        kind = pa.int64() if function == "count" else pa.float64()
        table = table.append_column(pa.field(name, kind), pa.array([], kind))
    return table
