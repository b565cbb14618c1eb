"""A pyfunc model for the FTI_PYFUNC tests: importing it is what a server must not do when refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def predict(X: Any, artifacts: dict[str, Path]) -> dict[str, np.ndarray]:
    return {"predict": np.asarray(X, dtype=np.float64)[:, 0] + 1.0}
