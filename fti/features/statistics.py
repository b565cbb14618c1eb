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
    con.close()
    _histograms(table, stats, numeric)
    return stats


def _histograms(table: pa.Table | Any, stats: dict[str, dict[str, Any]], columns: list[str]) -> None:
    """Equal-width histograms of every numeric column, in one streaming pass over ``table``'s
    record batches (numpy's ``bincount``: 3x faster than DuckDB's ``histogram`` aggregate, which
    builds a map per column). A value's bin is ``min(floor((x - min) / width), bins - 1)``."""
    import numpy as np
    import pyarrow.compute as pc

    plans: dict[str, tuple[float, float]] = {}
    for name in columns:
        lo, hi = stats[name]["min"], stats[name]["max"]
        if lo is None or hi is None:
            stats[name]["histogram"] = {"edges": [], "counts": []}
        elif lo == hi:
            stats[name]["histogram"] = {"edges": [lo, hi], "counts": [float(stats[name]["count"])]}
        else:
            plans[name] = (lo, (hi - lo) / HISTOGRAM_BINS)
    if not plans:
        return
    counts = {name: np.zeros(HISTOGRAM_BINS, dtype=np.int64) for name in plans}
    batches = table.to_batches() if isinstance(table, pa.Table) else table.to_batches(columns=list(plans))
    for batch in batches:
        for name, (lo, width) in plans.items():
            x = pc.cast(batch.column(name), pa.float64()).to_numpy(zero_copy_only=False)  # null -> NaN
            x = x[~np.isnan(x)]
            bins = np.minimum(np.floor((x - lo) / width).astype(np.int64), HISTOGRAM_BINS - 1)
            counts[name] += np.bincount(bins, minlength=HISTOGRAM_BINS)
    for name, (lo, width) in plans.items():
        stats[name]["histogram"] = {
            "edges": [lo + width * i for i in range(HISTOGRAM_BINS + 1)],
            "counts": [float(n) for n in counts[name]],
        }


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
