"""Descriptive statistics of a feature group, computed with DuckDB at each commit."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from fti._duckdb import quote as _q

HISTOGRAM_BINS = 10
TOP_VALUES = 10


def compute_statistics(table: pa.Table | Any) -> dict[str, dict[str, Any]]:
    """Per column: count, nulls, mean, std, min, max, approx distinct and a histogram.

    ``table`` is an Arrow table or dataset. Numeric columns get an equal-width histogram of
    ``HISTOGRAM_BINS`` bins; string and bool columns get the ``TOP_VALUES`` most frequent values.
    """
    from fti._duckdb import connect

    con = connect()
    con.register("data", table)
    schema: pa.Schema = table.schema
    selects: list[str] = ["count(*)"]
    for field in schema:
        c = _q(field.name)
        is_numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        temporal = pa.types.is_timestamp(field.type) or pa.types.is_date(field.type)
        selects.append(f"count({c})")
        selects.append(f"approx_count_distinct({c})")
        if is_numeric:
            selects += [
                f"avg({c})::DOUBLE",
                f"stddev_samp({c})::DOUBLE",
                f"min({c})::DOUBLE",
                f"max({c})::DOUBLE",
            ]
        elif temporal or pa.types.is_string(field.type):
            selects += ["NULL", "NULL", f"min({c})::VARCHAR", f"max({c})::VARCHAR"]
        else:
            selects += ["NULL", "NULL", "NULL", "NULL"]
    row = con.execute(f"SELECT {', '.join(selects)} FROM data").fetchone()
    assert row is not None
    total = int(row[0])
    stats: dict[str, dict[str, Any]] = {}
    numeric: list[str] = []
    for i, field in enumerate(schema):
        count, distinct, mean, std, lo, hi = row[1 + 6 * i : 7 + 6 * i]
        entry: dict[str, Any] = {
            "dtype": str(field.type),
            "count": int(count),
            "nulls": total - int(count),
            "approx_distinct": int(distinct),
            "mean": _num(mean),
            "std": _num(std),
            "min": _num(lo) if not isinstance(lo, str) else lo,
            "max": _num(hi) if not isinstance(hi, str) else hi,
        }
        if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            numeric.append(field.name)
        elif pa.types.is_string(field.type) or pa.types.is_boolean(field.type):
            entry["top_values"] = [
                {"value": v, "count": int(n)}
                for v, n in con.execute(
                    f"SELECT {_q(field.name)}, count(*) n FROM data WHERE {_q(field.name)} IS NOT NULL "
                    f"GROUP BY 1 ORDER BY n DESC, 1 LIMIT {TOP_VALUES}"
                ).fetchall()
            ]
        stats[field.name] = entry
    _histograms(con, stats, numeric)
    con.close()
    return stats


def _histograms(con: Any, stats: dict[str, dict[str, Any]], columns: list[str]) -> None:
    """Equal-width histograms of every numeric column in one scan (DuckDB ``histogram`` per column)."""
    selects, plans = [], []
    for name in columns:
        lo, hi = stats[name]["min"], stats[name]["max"]
        c = f"{_q(name)}::DOUBLE"
        if lo is None or hi is None:
            stats[name]["histogram"] = {"edges": [], "counts": []}
            continue
        if lo == hi:
            stats[name]["histogram"] = {"edges": [lo, hi], "counts": [float(stats[name]["count"])]}
            continue
        width = (hi - lo) / HISTOGRAM_BINS
        selects.append(
            f"histogram(least(floor(({c} - {lo!r}) / {width!r})::BIGINT, {HISTOGRAM_BINS - 1})) "
            f"FILTER (WHERE {_q(name)} IS NOT NULL AND NOT isnan({c}))"
        )
        plans.append((name, lo, width))
    if not selects:
        return
    result = con.execute(f"SELECT {', '.join(selects)} FROM data").fetchone()
    for (name, lo, width), buckets in zip(plans, result, strict=True):
        counts = [0.0] * HISTOGRAM_BINS
        for bucket, n in (buckets or {}).items():
            counts[int(bucket)] = float(n)
        stats[name]["histogram"] = {
            "edges": [lo + width * i for i in range(HISTOGRAM_BINS + 1)],
            "counts": counts,
        }


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
