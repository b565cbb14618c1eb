"""A pyfunc model whose loading and predicting wait for the gates in ``_gates`` (server tests).

Loading a pyfunc model imports this module, so a server process started with
``FTI_TEST_IMPORT_GATE=<path>`` keeps loading it until that file exists; in-process, a test closes
``_gates.PREDICT`` to make every predict call hang until it opens the gate again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.integration import _gates

if not _gates.IMPORT.wait(120):
    raise TimeoutError("the import gate of the test model was never opened")
_GATE_FILE = os.environ.get("FTI_TEST_IMPORT_GATE")  # a server process waits for this file to exist
_deadline = time.monotonic() + 120
while _GATE_FILE and not Path(_GATE_FILE).exists():
    if time.monotonic() > _deadline:
        raise TimeoutError(f"the import gate file {_GATE_FILE} was never created")
    time.sleep(0.05)


def predict(X: Any, artifacts: dict[str, Path]) -> dict[str, np.ndarray]:
    if not _gates.PREDICT.wait(120):
        raise TimeoutError("the predict gate of the test model was never opened")
    return {"predict": np.asarray(X, dtype=np.float64)[:, 0] * 2.0}
