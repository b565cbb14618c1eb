"""fti: a self-hosted ML platform on the Feature / Training / Inference pipelines architecture.

``import fti`` is deliberately light: it imports no data libraries and opens nothing. Public names
are resolved on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fti.errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    ExpectationError,
    FtiError,
    IntegrityError,
    ModelNotReadyError,
    NotFoundError,
    OnDemandError,
    PermissionDeniedError,
    SchemaError,
    ValidationError,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "connect": "fti.project",
    "Project": "fti.project",
    "Feature": "fti.types",
    "EmbeddingIndex": "fti.features.embeddings",
    "ModelRef": "fti.types",
    "bins": "fti.registry.evaluation.slicing",
    "Settings": "fti.config",
    "feature_pipeline": "fti.pipelines.definitions",
    "training_pipeline": "fti.pipelines.definitions",
    "inference_pipeline": "fti.pipelines.definitions",
    "every": "fti.pipelines.definitions",
    "on_new_data": "fti.pipelines.definitions",
    "on_event": "fti.pipelines.definitions",
    "on_demand": "fti.features.on_demand",
    "alert": "fti.monitoring.alerts",
    "stream_pipeline": "fti.pipelines.streams",
}

# subpackages reachable as attributes of ``fti`` (``fti.batch.score(...)``), imported on first use
_SUBMODULES = ("batch", "sources", "training", "window")

if TYPE_CHECKING:
    from fti import batch as batch
    from fti import sources as sources
    from fti import training as training
    from fti import window as window
    from fti.config import Settings
    from fti.features.embeddings import EmbeddingIndex
    from fti.features.on_demand import on_demand
    from fti.monitoring.alerts import alert
    from fti.pipelines.definitions import (
        every,
        feature_pipeline,
        inference_pipeline,
        on_event,
        on_new_data,
        training_pipeline,
    )
    from fti.pipelines.streams import stream_pipeline
    from fti.project import Project, connect
    from fti.registry.evaluation.slicing import bins
    from fti.types import Feature, ModelRef


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"fti.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fti' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_SUBMODULES])


__all__ = [
    "AlreadyExistsError",
    "BackendError",
    "ConflictError",
    "EmbeddingIndex",
    "ExpectationError",
    "Feature",
    "FtiError",
    "IntegrityError",
    "ModelNotReadyError",
    "ModelRef",
    "NotFoundError",
    "OnDemandError",
    "PermissionDeniedError",
    "Project",
    "SchemaError",
    "Settings",
    "ValidationError",
    "__version__",
    "alert",
    "bins",
    "connect",
    "every",
    "feature_pipeline",
    "inference_pipeline",
    "on_demand",
    "on_event",
    "on_new_data",
    "stream_pipeline",
    "training_pipeline",
]
