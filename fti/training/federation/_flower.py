"""Importing Flower (``flwr``, the ``federated`` extra): quietly and without telemetry.

Flower sends usage telemetry to its servers unless ``FLWR_TELEMETRY_ENABLED=0``; fti turns it off
(unless the user set the variable) before the first import, in this process and in the client
processes it starts. Importing Flower raises deprecation warnings from its command-line
dependencies, which would fail a caller that runs with warnings as errors; they are silenced
while importing. The modules that need Flower import it at their top inside :func:`importing`,
and are themselves imported only when federated training runs, so ``import fti`` stays light.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from fti.errors import BackendError

TELEMETRY_VARIABLE = "FLWR_TELEMETRY_ENABLED"


def environment() -> dict[str, str]:
    """Environment variables for processes that run Flower on fti's behalf."""
    return {TELEMETRY_VARIABLE: os.environ.get(TELEMETRY_VARIABLE, "0")}


@contextmanager
def importing() -> Iterator[None]:
    """Import Flower modules inside this block.

    Raises:
        BackendError: Flower is not installed.
    """
    os.environ.setdefault(TELEMETRY_VARIABLE, "0")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    except ImportError as exc:
        raise BackendError(
            f"federated training needs Flower ({exc}); install it with `pip install 'fti[federated]'`"
        ) from None


def version() -> str:
    """The installed Flower version."""
    with importing():
        import flwr

    return str(getattr(flwr, "__version__", ""))


def set_verbose(verbose: bool) -> None:
    """Flower logs every message at INFO on its own handler, and warns on every start that its
    gRPC client/server API is deprecated; show only its errors unless ``verbose``."""
    logging.getLogger("flwr").setLevel(logging.INFO if verbose else logging.ERROR)
