"""Verification: a candidate scorer is used only if it reproduces the native outputs.

Labels must be identical, probabilities within :data:`PROBA_ATOL` and regression values within
:data:`VALUE_RTOL` of the largest value, with the same output names and shapes. A scorer that
fails to predict at all does not agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fti.inference.base import Scorer

if TYPE_CHECKING:
    import numpy as np

PROBA_ATOL = 1e-5
"""Largest absolute difference of a probability from the native one."""
VALUE_RTOL = 1e-5
"""Largest difference of a regression value, relative to the largest native value (at least 1)."""


def agrees(outputs: dict[str, np.ndarray] | None, reference: dict[str, np.ndarray]) -> bool:
    """Labels identical; probabilities and values within a tight tolerance; same shapes."""
    import numpy as np

    if outputs is None or set(outputs) != set(reference):
        return False
    for name, ref in reference.items():
        got = np.asarray(outputs[name])
        if got.shape != ref.shape:
            return False
        if ref.dtype.kind in "fc" and got.dtype.kind in "fc":
            tolerance = (
                PROBA_ATOL if name == "predict_proba" else VALUE_RTOL * max(1.0, float(np.abs(ref).max()))
            )
            if not np.allclose(got, ref, rtol=0.0, atol=tolerance, equal_nan=True):
                return False
        elif not bool((got.astype(object) == ref.astype(object)).all()):
            return False
    return True


def safe_predict(scorer: Scorer, sample: np.ndarray) -> dict[str, np.ndarray] | None:
    """``scorer``'s outputs on ``sample``, or None if it raises (a candidate that cannot score)."""
    try:
        return scorer.predict(sample)
    except Exception:
        return None
