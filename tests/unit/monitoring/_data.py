"""Helpers of the monitoring tests: a reference profile and a window summary from plain arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from fti.monitoring.profiles import ColumnProfile, ProfileBuilder
from fti.monitoring.summaries import CategoricalSummary, NumericSummary, WindowSummary


def dtype_of(values: Any) -> str:
    array = np.asarray(values)
    if array.dtype.kind == "f":
        return "float64"
    if array.dtype.kind in "iu":
        return "int64"
    if array.dtype.kind == "b":
        return "bool"
    return "string"


def profile(values: Any, name: str = "x", batch: int = 4096) -> ColumnProfile:
    """The reference profile of one column, fed in batches."""
    array = pa.array(values if not isinstance(values, np.ndarray) else values.tolist())
    builder = ProfileBuilder({name: (dtype_of(values), "feature")})
    for start in range(0, len(array), batch):
        builder.update(pa.table({name: array.slice(start, batch)}))
    return builder.finish({"kind": "test"}).column(name)


def summary(reference: ColumnProfile, values: Any, batch: int = 4096) -> NumericSummary | CategoricalSummary:
    array = pa.array(values if not isinstance(values, np.ndarray) else values.tolist())
    window = WindowSummary({reference.name: reference})
    for start in range(0, len(array), batch):
        window.update(pa.table({reference.name: array.slice(start, batch)}))
    return window.columns[reference.name]
