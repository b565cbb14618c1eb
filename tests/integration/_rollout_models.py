"""pyfunc models for the shadow and canary tests: one that can be switched to raise on every
request, one that fails 30 % of its requests (decided by the input, so the failures are known)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

FAILING = threading.Event()
"""Set by a test once the models are registered (registration predicts on the input example)."""


def fails(a: float) -> bool:
    """Whether ``flaky`` fails a request whose first input is ``a`` (30 % of uniform values)."""
    return int(abs(a) * 1000) % 10 < 3


def broken(X: Any, artifacts: dict[str, Path]) -> dict[str, np.ndarray]:
    if FAILING.is_set():
        raise RuntimeError("the shadow model is broken")
    return {"predict": np.asarray(X, dtype=np.float64)[:, 0] * 2.0}


def flaky(X: Any, artifacts: dict[str, Path]) -> dict[str, np.ndarray]:
    x = np.asarray(X, dtype=np.float64)
    if FAILING.is_set() and any(fails(a) for a in x[:, 0]):
        raise RuntimeError("the candidate failed this request")
    return {"predict": x[:, 0] * 2.0}


def good(X: Any, artifacts: dict[str, Path]) -> dict[str, np.ndarray]:
    return {"predict": np.asarray(X, dtype=np.float64)[:, 0] * 2.0}
