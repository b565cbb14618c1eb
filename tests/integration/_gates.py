"""Gates the tests open and close to make a model's loading or predicting hang (see _gated_model).

Both are open by default; a test that closes one opens it again when it ends.
"""

from __future__ import annotations

import threading

IMPORT = threading.Event()
"""Importing ``_gated_model`` (which is what loading its pyfunc model does) waits for this."""
PREDICT = threading.Event()
"""Every predict call of ``_gated_model`` waits for this."""

IMPORT.set()
PREDICT.set()
