"""A custom predict function for the pyfunc flavor tests (imported by reference on load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def predict(X: Any, artifacts: dict[str, Path]) -> dict[str, np.ndarray]:
    weights = np.asarray([float(w) for w in artifacts["weights"].read_text().split(",")])
    scores = np.asarray(X, dtype=np.float64) @ weights
    return {"predict": (scores > 0).astype(np.int64), "score": scores}
