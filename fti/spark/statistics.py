"""Descriptive statistics of a feature group version, computed with Spark aggregations.

The same figures and shape as :func:`fti.features.statistics.compute_statistics` (DuckDB), which
the UI and ``fg.statistics()`` show: per column count, nulls, approximate distinct count, mean,
sample standard deviation, min and max (times and strings as text, in DuckDB's format), a
10-bin equal-width histogram of numeric columns and the 10 most frequent values of string and
bool columns. One aggregation for the moments, one for every histogram, one per top-values column.

A Spark insert always recomputes them over the whole table version, and stores no mergeable state
(:mod:`fti.features.statistics_state`): its commits are large, so a full aggregation on the cluster
is in proportion, and the next in-process append finds no state of the Spark commit's version and
recomputes (building a fresh state), so nothing is merged twice or missed.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from fti.features.statistics import HISTOGRAM_BINS, TOP_VALUES

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame


def compute(df: DataFrame, schema: pa.Schema) -> dict[str, dict[str, Any]]:
    """Statistics of every column of ``df``, whose Arrow schema (the table's) is ``schema``.

    Two Spark jobs: the moments of every column, then the histograms and top values of all
    columns at once (one grouped count per column, unioned).
    """
    import pyarrow as pa
    from pyspark.sql import functions as F

    aggregates = [F.count(F.lit(1)).alias("__rows")]
    for i, field in enumerate(schema):
        c = F.col(f"`{field.name}`")
        aggregates += [F.count(c).alias(f"n{i}"), F.approx_count_distinct(c).alias(f"d{i}")]
        if _numeric(field.type):
            x = c.cast("double")
            aggregates += [F.avg(x).alias(f"m{i}"), F.stddev_samp(x).alias(f"s{i}")]
            aggregates += [F.min(x).alias(f"lo{i}"), F.max(x).alias(f"hi{i}")]
        elif (
            pa.types.is_timestamp(field.type)
            or pa.types.is_date(field.type)
            or pa.types.is_string(field.type)
        ):
            aggregates += [F.min(c).alias(f"lo{i}"), F.max(c).alias(f"hi{i}")]
    row = df.agg(*aggregates).collect()[0].asDict()
    total = int(row["__rows"])
    stats: dict[str, dict[str, Any]] = {}
    for i, field in enumerate(schema):
        count = int(row[f"n{i}"])
        stats[field.name] = {
            "dtype": str(field.type),
            "count": count,
            "nulls": total - count,
            "approx_distinct": int(row[f"d{i}"]),
            "mean": _num(row.get(f"m{i}")),
            "std": _num(row.get(f"s{i}")),
            "min": _text(row.get(f"lo{i}")),
            "max": _text(row.get(f"hi{i}")),
        }
    _counts(df, schema, stats)
    return stats


def _numeric(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _counts(df: DataFrame, schema: pa.Schema, stats: dict[str, dict[str, Any]]) -> None:
    """Equal-width histograms of the numeric columns (DuckDB's bucket arithmetic) and the most
    frequent values of the string and bool columns, in one job."""
    import pyarrow as pa
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    branches = []
    widths: dict[int, tuple[float, float]] = {}
    for i, field in enumerate(schema):
        entry = stats[field.name]
        c = F.col(f"`{field.name}`")
        if _numeric(field.type):
            lo, hi = entry["min"], entry["max"]
            if lo is None or hi is None:
                entry["histogram"] = {"edges": [], "counts": []}
                continue
            if lo == hi:
                entry["histogram"] = {"edges": [lo, hi], "counts": [float(entry["count"])]}
                continue
            widths[i] = (lo, (hi - lo) / HISTOGRAM_BINS)
            x = c.cast("double")
            bucket = F.least(
                F.floor((x - F.lit(lo)) / F.lit(widths[i][1])).cast("long"), F.lit(HISTOGRAM_BINS - 1)
            )
            branches.append(
                df.where(x.isNotNull() & ~F.isnan(x)).select(
                    F.lit(i).alias("c"), bucket.cast("string").alias("v")
                )
            )
        elif pa.types.is_string(field.type) or pa.types.is_boolean(field.type):
            entry["top_values"] = []
            branches.append(df.where(c.isNotNull()).select(F.lit(i).alias("c"), c.cast("string").alias("v")))
    if not branches:
        return
    grouped = [branch.groupBy("c", "v").count() for branch in branches]
    union = grouped[0]
    for other in grouped[1:]:
        union = union.unionByName(other)
    rank = F.row_number().over(Window.partitionBy("c").orderBy(F.col("count").desc(), F.col("v")))
    rows = union.withColumn("r", rank).where(F.col("r") <= max(TOP_VALUES, HISTOGRAM_BINS)).collect()
    histograms = {i: [0.0] * HISTOGRAM_BINS for i in widths}
    for row in sorted(rows, key=lambda r: (r["c"], r["r"])):
        i, value, count = int(row["c"]), row["v"], int(row["count"])
        field = schema.field(i)
        if i in widths:
            histograms[i][int(value)] = float(count)
        elif int(row["r"]) <= TOP_VALUES:
            shown = value == "true" if pa.types.is_boolean(field.type) else value
            stats[field.name]["top_values"].append({"value": shown, "count": count})
    for i, (lo, width) in widths.items():
        stats[schema.field(i).name]["histogram"] = {
            "edges": [lo + width * b for b in range(HISTOGRAM_BINS + 1)],
            "counts": histograms[i],
        }


def _num(value: Any) -> float | None:
    """A finite float, or None (as the DuckDB statistics report NaN and infinities)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _text(value: Any) -> Any:
    """A min/max as DuckDB's statistics give it: numbers as floats, times and dates as text."""
    if isinstance(value, datetime):
        # PySpark returns TimestampType as naive local time: astimezone reads it as such
        instant = value.astimezone(UTC)
        fraction = f".{instant.microsecond:06d}".rstrip("0") if instant.microsecond else ""
        return instant.strftime("%Y-%m-%d %H:%M:%S") + fraction + "+00"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    return _num(value)
