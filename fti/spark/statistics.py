"""Descriptive statistics of a feature group version, computed with Spark aggregations.

The same figures and shape as :func:`fti.features.statistics.compute_statistics` (DuckDB), which
the UI and ``fg.statistics()`` show: per column count, nulls, approximate distinct count, mean,
sample standard deviation, min and max (times and strings as text, in DuckDB's format), a
10-bin equal-width histogram of numeric columns and the 10 most frequent values of string and
bool columns. One aggregation for the moments, one for every histogram, one per top-values column.
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
    """Statistics of every column of ``df``, whose Arrow schema (the table's) is ``schema``."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    aggregates = [F.count(F.lit(1)).alias("__rows")]
    numeric: list[str] = []
    for i, field in enumerate(schema):
        c = F.col(f"`{field.name}`")
        aggregates += [F.count(c).alias(f"n{i}"), F.approx_count_distinct(c).alias(f"d{i}")]
        if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            numeric.append(field.name)
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
        if pa.types.is_string(field.type) or pa.types.is_boolean(field.type):
            c = F.col(f"`{field.name}`")
            top = (
                df.where(c.isNotNull())
                .groupBy(c.alias("v"))
                .count()
                .orderBy(F.col("count").desc(), F.col("v"))
                .limit(TOP_VALUES)
                .collect()
            )
            stats[field.name]["top_values"] = [{"value": r["v"], "count": int(r["count"])} for r in top]
    _histograms(df, stats, numeric)
    return stats


def _histograms(df: DataFrame, stats: dict[str, dict[str, Any]], columns: list[str]) -> None:
    """Equal-width histograms of the numeric columns, with DuckDB's bucket arithmetic."""
    from pyspark.sql import functions as F

    aggregates = []
    plans: list[tuple[str, float, float]] = []
    for name in columns:
        lo, hi = stats[name]["min"], stats[name]["max"]
        if lo is None or hi is None:
            stats[name]["histogram"] = {"edges": [], "counts": []}
            continue
        if lo == hi:
            stats[name]["histogram"] = {"edges": [lo, hi], "counts": [float(stats[name]["count"])]}
            continue
        width = (hi - lo) / HISTOGRAM_BINS
        x = F.col(f"`{name}`").cast("double")
        valid = x.isNotNull() & ~F.isnan(x)
        bucket = F.least(F.floor((x - F.lit(lo)) / F.lit(width)).cast("long"), F.lit(HISTOGRAM_BINS - 1))
        index = len(plans)
        aggregates += [
            F.count_if(valid & (bucket == b)).alias(f"h{index}_{b}") for b in range(HISTOGRAM_BINS)
        ]
        plans.append((name, lo, width))
    if not plans:
        return
    row = df.agg(*aggregates).collect()[0].asDict()
    for index, (name, lo, width) in enumerate(plans):
        stats[name]["histogram"] = {
            "edges": [lo + width * i for i in range(HISTOGRAM_BINS + 1)],
            "counts": [float(row[f"h{index}_{b}"]) for b in range(HISTOGRAM_BINS)],
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
