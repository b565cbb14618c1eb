"""The point-in-time join of a feature query in Spark: a union-and-window plan, no ``ASOF``.

For every spine row, each joined group contributes its latest row whose event time is <= the
spine row's (ARCHITECTURE.md invariant 1, "no leakage"), or nulls when there is none or it is
older than the group's ``max_age``, exactly as :mod:`fti.features.pit` does in DuckDB:

* the spine rows and the rows of every joined group keyed by the same columns are unioned into
  one frame, with the group's row packed into a struct column (null on spine rows);
* a window partitioned by the key and ordered by (event time, side), where a group's row sorts
  before a spine row of the same time (equal times count as known), carries the last non-null
  struct forward: ``last(row, ignorenulls)`` over the rows up to the current one;
* the spine rows keep what the window found. One shuffle per distinct join key, whatever the
  number of groups joined on it; no range join, so a key's history never multiplies the rows.

Groups without an event time join on key only; when the spine has no event time, every joined
group contributes its latest row per key. Spine rows are never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from fti.features.query import Query

_TIME = "__fti_t"
_SIDE = "__fti_side"  # 0: a joined group's row, 1: a spine row (sorts after an equal-time group row)
_SPINE = "__fti_spine"
_ROW_TIME = "__fti_ts"  # a joined row's own event time, inside its struct (for max_age)


def _joined(index: int, position: int) -> str:
    """The internal name of a joined group's column (output names may clash with spine columns
    that are only join keys)."""
    return f"__fti_j{index}_{position}"


def join(
    query: Query,
    frames: Sequence[DataFrame],
    *,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    order: bool = True,
) -> DataFrame:
    """The point-in-time join of ``query`` over ``frames`` (one DataFrame per query part, in part
    order, with the groups' columns) as a lazy Spark DataFrame.

    Columns: the spine's primary key and event time, then every selected column under its output
    name (as :func:`fti.features.pit.build_sql`). ``start_time`` (inclusive) and ``end_time``
    (exclusive) filter the spine's event time. With ``order``, rows are sorted by spine event
    time, then primary key.
    """
    from pyspark.sql import functions as F

    spine_group = query.spine
    spine_ts = spine_group.event_time
    current = frames[0].select(*[_col(c) for c in _spine_columns(query)])
    if start_time is not None:
        current = current.where(_col(str(spine_ts)) >= F.lit(start_time))
    if end_time is not None:
        current = current.where(_col(str(spine_ts)) < F.lit(end_time))

    asof: dict[tuple[str, ...], list[int]] = {}
    for index, part in enumerate(query.parts[1:], start=1):
        if part.group.event_time is not None and spine_ts is not None:
            asof.setdefault(part.on, []).append(index)
        else:
            current = _key_join(current, query, index, frames[index])
    for on, indices in asof.items():
        current = _asof_join(current, query, on, indices, frames)

    keys = query.key_columns()
    selected: list[Column] = [_col(k) for k in keys]
    positions: dict[int, int] = {}
    for column in query.columns():
        if column.part == 0:
            if column.name not in keys:
                selected.append(_col(column.column).alias(column.name))
            continue
        position = positions.get(column.part, 0)
        positions[column.part] = position + 1
        selected.append(_col(_joined(column.part, position)).alias(column.name))
    result = current.select(*selected)
    if order:
        result = result.orderBy(
            *[_col(k) for k in [*([spine_ts] if spine_ts else []), *spine_group.primary_key]]
        )
    return result


def _col(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(f"`{name}`")


def _spine_columns(query: Query) -> list[str]:
    """The spine columns the join needs (as :func:`fti.features.pit.spine_columns`)."""
    needed = [*query.key_columns(), *(c.column for c in query.columns() if c.part == 0)]
    needed += [k for part in query.parts[1:] for k in part.on]
    return list(dict.fromkeys(needed))


def _features(query: Query, index: int) -> list[str]:
    """The columns of part ``index`` that the query selects, in query order."""
    return [c.column for c in query.columns() if c.part == index]


def _key_types(query: Query, indices: list[int]) -> dict[str, str]:
    """One dtype per join column of the parts ``indices`` (all joined on the same columns):
    integers of different widths meet as int64 (the query allows no other mix)."""
    spine = {f.name: f.dtype for f in query.spine.features or []}
    out = {}
    for key in query.parts[indices[0]].on:
        seen = {spine[key]}
        for index in indices:
            seen |= {f.dtype for f in query.parts[index].group.features or [] if f.name == key}
        out[key] = seen.pop() if len(seen) == 1 else "int64"
    return out


def _asof_join(
    current: DataFrame, query: Query, on: tuple[str, ...], indices: list[int], frames: Sequence[DataFrame]
) -> DataFrame:
    """Join every part in ``indices`` (all keyed by ``on``, all with an event time) as of the
    spine's event time, with one union and one window."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from fti.spark.types import spark_type

    spine_ts = str(query.spine.event_time)
    types = _key_types(query, indices)
    keys = [f"__fti_k{i}" for i in range(len(on))]
    carried = current.columns

    def key_columns() -> list[Column]:
        return [_col(k).cast(spark_type(types[k])).alias(alias) for k, alias in zip(on, keys, strict=True)]

    frame = current.select(
        *key_columns(),
        _col(spine_ts).alias(_TIME),
        F.lit(1).alias(_SIDE),
        F.struct(*[_col(c) for c in carried]).alias(_SPINE),
    )
    for index in indices:
        group_ts = str(query.parts[index].group.event_time)
        row = F.struct(_col(group_ts).alias(_ROW_TIME), *[_col(c) for c in _features(query, index)])
        rows = frames[index].select(
            *key_columns(), _col(group_ts).alias(_TIME), F.lit(0).alias(_SIDE), row.alias(f"__fti_r{index}")
        )
        frame = frame.unionByName(rows, allowMissingColumns=True)
    window = (
        Window.partitionBy(*keys)
        .orderBy(F.col(_TIME), F.col(_SIDE))
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    found = [
        F.last(f"__fti_r{index}", ignorenulls=True).over(window).alias(f"__fti_m{index}") for index in indices
    ]
    frame = frame.select(_SIDE, _TIME, _SPINE, *found).where(F.col(_SIDE) == 1)
    outputs: list[Column] = [F.col(f"{_SPINE}.`{c}`").alias(c) for c in carried]
    for index in indices:
        part = query.parts[index]
        match = f"__fti_m{index}"
        for position, feature in enumerate(_features(query, index)):
            value: Any = F.col(f"{match}.`{feature}`")
            if part.max_age is not None:
                limit = int(part.max_age.total_seconds() * 1_000_000)
                age = F.unix_micros(F.col(_TIME)) - F.unix_micros(F.col(f"{match}.{_ROW_TIME}"))
                value = F.when(age <= F.lit(limit), value)
            outputs.append(value.alias(_joined(index, position)))
    return frame.select(*outputs)


def _key_join(current: DataFrame, query: Query, index: int, frame: DataFrame) -> DataFrame:
    """A left join on key only: a group without an event time, or any group when the spine has
    none (then the group's latest row per key)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    part = query.parts[index]
    group_ts = part.group.event_time
    features = _features(query, index)
    right_keys = [f"__fti_rk{i}" for i in range(len(part.on))]
    right = frame
    if group_ts is not None:
        latest = Window.partitionBy(*[_col(k) for k in part.on]).orderBy(_col(group_ts).desc())
        right = right.withColumn("__fti_n", F.row_number().over(latest)).where(F.col("__fti_n") == 1)
    right = right.select(
        *[_col(k).alias(alias) for k, alias in zip(part.on, right_keys, strict=True)],
        *[_col(f).alias(_joined(index, position)) for position, f in enumerate(features)],
    )
    condition = None
    for key, alias in zip(part.on, right_keys, strict=True):
        term = current[f"`{key}`"] == right[alias]
        condition = term if condition is None else condition & term
    return current.join(right, condition, "left").drop(*right_keys)
