"""Shared helpers for benchmark scripts: timing, percentiles and a uniform printed report."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> float:
    """Seconds taken by one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat(fn: Callable[[], Any], n: int) -> list[float]:
    """Per-call latencies in seconds over ``n`` calls."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def row(label: str, **figures: Any) -> None:
    parts = []
    for key, value in figures.items():
        parts.append(f"{key}={value:,.3f}" if isinstance(value, float) else f"{key}={value}")
    print(f"{label:<42} " + "  ".join(parts), flush=True)
