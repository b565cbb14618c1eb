"""The one-row twins of the transformation steps (:mod:`fti.features.transformations`).

An online vector of one entity is transformed value by value in plain Python: numpy's per-call
overhead on one-element arrays would otherwise be most of a single lookup's cost. Each twin gives
bit-identical results to its vectorized step (IEEE arithmetic is the same in both,
``bisect_right`` is ``searchsorted(side="right")``, ``log1p`` is numpy's own on a scalar); a
property test holds them to it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

RowStep = Callable[[Any], Any]
"""One value in, the step's output out (a list of values for a step with several outputs)."""


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _scale_row(center: float, scale: float) -> RowStep:
    scale = scale if scale != 0.0 and math.isfinite(scale) else 1.0
    return lambda value: (_float(value) - center) / scale


def _log1p_row(value: Any) -> float:
    x = _float(value)
    if x > -1.0 and x != math.inf:  # the usual case: no special value, no floating-point warning
        # numpy's log1p on a scalar runs the loop the vectorized step runs (math.log1p is the C
        # library's and differs in the last bit for some inputs)
        return float(np.log1p(x))
    if x == -1.0 or x == math.inf:
        return math.nan  # the vectorized step turns the infinities log1p gives here into NaN
    with np.errstate(invalid="ignore"):  # NaN in, or below -1: log1p's own NaN, as in a column
        return float(np.log1p(x))


def _bucketize_row(boundaries: tuple[float, ...]) -> RowStep:
    edges = [float(b) for b in boundaries]

    def apply(value: Any) -> int:
        x = _float(value)
        return -1 if x != x else bisect.bisect_right(edges, x)  # x != x: NaN

    return apply


def _encoder_row(categories: list[Any], one_hot: bool, unseen: int) -> RowStep:
    codes = {value: index for index, value in enumerate(categories)}
    if not one_hot:
        return lambda value: codes.get(value, unseen)
    zeros = [0.0] * len(categories)

    def apply(value: Any) -> list[float]:
        out = list(zeros)
        code = codes.get(value, unseen)
        if code != unseen:
            out[code] = 1.0
        return out

    return apply


def compile_row(
    kind: str, boundaries: tuple[float, ...], stats: Mapping[str, Any], unseen: int
) -> RowStep | None:
    """The one-row twin of a built-in step of ``kind``; ``unseen`` is the code of an unseen category.

    None for a custom function (which runs vectorized on the one value)."""
    if kind == "standard_scaler":
        return _scale_row(stats["mean"], stats["std"])
    if kind == "min_max_scaler":
        return _scale_row(stats["min"], stats["max"] - stats["min"])
    if kind == "robust_scaler":
        return _scale_row(stats["median"], stats["q75"] - stats["q25"])
    if kind == "log1p":
        return _log1p_row
    if kind == "bucketize":
        return _bucketize_row(boundaries)
    if kind in ("label_encoder", "one_hot_encoder"):
        return _encoder_row(list(stats["categories"]), kind == "one_hot_encoder", unseen)
    return None
