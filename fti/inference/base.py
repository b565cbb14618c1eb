"""The contracts of inference: what a scorer does, and what it needs from a model version.

A :class:`Scorer` turns a 2-D numeric matrix (rows x model inputs, in signature order) into the
model's outputs by name (``{"predict": labels, "predict_proba": probabilities}`` for classifiers,
``{"predict": values}`` for regressors), the same dict the model's flavor returns. A
:class:`ModelVersionLike` is the registry's model version as inference sees it: enough to load
the native model, check its artifacts, bind cached conversions to their digests and find real
rows to verify conversions on. Serving and batch pass ``fti.registry.ModelVersion`` objects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

KINDS = ("native", "onnx", "compiled", "factorized")
"""Scorer kinds: the model's own predict, ONNX Runtime, a forest compiled to machine code, a
linear model's link over decision values computed per group row (batch only)."""

CLASSES_NOT_RECORDED: Any = object()
"""The ``classes`` of a scorer rebuilt from a cache manifest that did not record them."""

PredictFn = Callable[[Any, Any], dict[str, Any]]
"""The reference prediction path ``(native model, X) -> outputs by name`` (a flavor's predict)."""


class Scorer(Protocol):
    """Runs one model over a batch: ``predict(X)`` returns the model's outputs by name."""

    @property
    def kind(self) -> str:
        """``native``, ``onnx``, ``compiled`` or ``factorized`` (see :data:`KINDS`)."""
        ...

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Score the rows of the 2-D matrix ``X`` (features in model-input order)."""
        ...


class TensorLike(Protocol):
    """One input of a model signature."""

    @property
    def name(self) -> str: ...

    @property
    def datatype(self) -> str:
        """The Open Inference Protocol datatype (``FP64``, ``INT64``, ``BOOL``, ``BYTES``...)."""
        ...


class SignatureLike(Protocol):
    """A model signature: its inputs, one per feature column in model order."""

    @property
    def inputs(self) -> Sequence[TensorLike]: ...


class TrainingDataSource(Protocol):
    """A feature view, as far as inference reads it: the rows of a training dataset version."""

    def get_training_data(self, training_dataset_version: int) -> tuple[Any, ...]:
        """``X, y`` (or the split tuple ``X_train, X_test, y_train, y_test``...) of the version."""
        ...


class ModelVersionLike(Protocol):
    """What inference needs from a registered model version (``fti.registry.ModelVersion``)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def flavor(self) -> str:
        """The flavor that saved it; its ``predict`` is the reference every scorer must match."""
        ...

    @property
    def artifacts(self) -> Mapping[str, str]:
        """``{relative path: sha256}`` of the stored files: cached conversions are bound to them."""
        ...

    @property
    def signature(self) -> SignatureLike: ...

    @property
    def training_dataset_version(self) -> int | None:
        """The training dataset version of its feature view it was trained on, or None."""
        ...

    def load(self) -> Any:
        """The native model object (artifact digests verified first)."""
        ...

    def verify(self) -> None:
        """Check the stored artifacts against their digests (``IntegrityError`` if they differ)."""
        ...

    def feature_view(self) -> TrainingDataSource | None:
        """The feature view it was trained from (its training data are real rows), or None."""
        ...

    def input_example(self) -> Any:
        """The first rows of the input example given at registration, or None."""
        ...


def numeric_inputs(version: ModelVersionLike) -> bool:
    """Whether every input of ``version``'s signature is a number (or a boolean).

    Converted scorers (ONNX Runtime, compiled forests) and their verification take a float
    matrix; a model with a string input (``BYTES``, e.g. a pipeline that one-hot encodes a
    column) is scored by its native model only.
    """
    return all(tensor.datatype != "BYTES" for tensor in version.signature.inputs)


def threads() -> int:
    """Intra-op threads: the cores this process may use (2 on the reference machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def as_array(value: Any) -> np.ndarray:
    """A numpy array from a prediction (pandas, lists, arrays)."""
    import numpy as np

    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value)
