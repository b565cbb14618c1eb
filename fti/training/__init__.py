"""Training: runs (params, metric series, code and environment capture) and federated training.

``fti.training.federated(fv, partition_by=..., model=fti.training.SGDClassifierSpec())`` trains one
model across the partitions of a feature view's training data with Flower (see
:mod:`fti.training.federation`); its names are imported on first use, so ``import fti`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "federated": "fti.training.federation",
    "SGDClassifierSpec": "fti.training.federation.models",
    "TorchModuleSpec": "fti.training.federation.models",
    "ModelSpec": "fti.training.federation.models",
    "FederatedResult": "fti.training.federation.session",
    "Run": "fti.training.runs",
}

if TYPE_CHECKING:
    from fti.training.federation import federated
    from fti.training.federation.models import ModelSpec, SGDClassifierSpec, TorchModuleSpec
    from fti.training.federation.session import FederatedResult
    from fti.training.runs import Run


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fti.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["FederatedResult", "ModelSpec", "Run", "SGDClassifierSpec", "TorchModuleSpec", "federated"]
