"""Model specs for federated training: what each client trains, and the weights it exchanges.

A :class:`ModelSpec` describes a model without data. The server ships it to every client as
JSON (:func:`spec_config`), each client rebuilds it (:func:`load_spec`) and builds a
:class:`LocalModel` for the number of transformed features; only that model's weights (a list of
numpy arrays) travel between clients and server. Two specs are built in:

- :class:`SGDClassifierSpec`: logistic regression trained with scikit-learn's ``SGDClassifier``
  (``partial_fit`` over mini-batches); the registered model is that ``SGDClassifier``.
- :class:`TorchModuleSpec`: any PyTorch module mapping ``n_features`` inputs to one logit, shipped
  as TorchScript (which loads without running Python code) and registered as TorchScript.

Your own spec subclasses :class:`ModelSpec` in an importable module: clients rebuild it as
``cls(**spec.to_config())``. Only subclasses of :class:`ModelSpec` are ever constructed from a
server's message, so a server cannot make a client call arbitrary code.
"""

from __future__ import annotations

import base64
import importlib
import io
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fti.errors import ValidationError


@runtime_checkable
class LocalModel(Protocol):
    """The model one client trains on its own rows (binary classification, labels 0/1)."""

    def get_weights(self) -> list[np.ndarray]:
        """The current weights, in a fixed order."""
        ...

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace the weights (same order and shapes as :meth:`get_weights`)."""
        ...

    def fit(self, X: np.ndarray, y: np.ndarray, *, proximal_mu: float, seed: int) -> dict[str, float]:
        """Train locally from the current weights; returns training metrics (``loss`` at least).

        With ``proximal_mu > 0`` (FedProx) the local objective adds
        ``proximal_mu / 2 * ||w - w_start||^2``, where ``w_start`` are the weights set last.
        """
        ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The probability of class 1 for each row."""
        ...

    def export(self, feature_names: Sequence[str]) -> Any:
        """The trained model as an object the model registry can store."""
        ...


class ModelSpec(ABC):
    """A model description that every client can rebuild: subclass it in an importable module."""

    @abstractmethod
    def build(self, n_features: int) -> LocalModel:
        """A fresh model for ``n_features`` inputs, with its initial weights."""

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """Constructor keyword arguments as JSON values: clients rebuild ``cls(**config)``."""


@dataclass(frozen=True)
class SGDClassifierSpec(ModelSpec):
    """Logistic regression by stochastic gradient descent (scikit-learn ``SGDClassifier``).

    Args:
        alpha: L2 regularization strength.
        learning_rate: Constant step size (``eta0``); a constant rate keeps averaged updates
            comparable across clients and rounds.
        local_epochs: Passes over the client's rows per round.
        batch_size: Rows per ``partial_fit`` call; the FedProx proximal step follows each batch.
    """

    alpha: float = 1e-4
    learning_rate: float = 0.01
    local_epochs: int = 1
    batch_size: int = 256

    def __post_init__(self) -> None:
        _positive_number("alpha", self.alpha, allow_zero=True)
        _positive_number("learning_rate", self.learning_rate)
        _positive_int("local_epochs", self.local_epochs)
        _positive_int("batch_size", self.batch_size)

    def build(self, n_features: int) -> SGDLogisticModel:
        return SGDLogisticModel(self, n_features)

    def to_config(self) -> dict[str, Any]:
        return asdict(self)


class SGDLogisticModel:
    """The local model of :class:`SGDClassifierSpec`: weights ``[coef (n,), intercept (1,)]``."""

    def __init__(self, spec: SGDClassifierSpec, n_features: int) -> None:
        from sklearn.linear_model import SGDClassifier

        self.spec = spec
        self.n_features = n_features
        self.estimator = SGDClassifier(
            loss="log_loss",
            penalty="l2",
            alpha=spec.alpha,
            learning_rate="constant",
            eta0=spec.learning_rate,
            shuffle=False,  # rows are permuted here, with a per-round seed
        )
        self._start = [np.zeros(n_features), np.zeros(1)]
        self.set_weights(self._start)

    def get_weights(self) -> list[np.ndarray]:
        return [self.estimator.coef_[0].copy(), self.estimator.intercept_.copy()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        coef, intercept = _check_shapes(weights, [(self.n_features,), (1,)])
        # partial_fit continues from coef_/intercept_ when they are set (a warm start)
        self.estimator.coef_ = np.ascontiguousarray(coef, dtype=np.float64).reshape(1, -1)
        self.estimator.intercept_ = np.asarray(intercept, dtype=np.float64).copy()
        self._start = [coef.copy(), intercept.copy()]

    def fit(self, X: np.ndarray, y: np.ndarray, *, proximal_mu: float, seed: int) -> dict[str, float]:
        rng = np.random.default_rng(seed)
        spec = self.spec
        X = _zero_missing(X)
        start = np.concatenate(self._start)
        classes = np.array([0, 1])
        for _ in range(spec.local_epochs):
            order = rng.permutation(len(y))
            for begin in range(0, len(y), spec.batch_size):
                rows = order[begin : begin + spec.batch_size]
                self.estimator.partial_fit(X[rows], y[rows], classes=classes)
                if proximal_mu > 0:
                    # the exact proximal step of mu/2 * ||w - w_start||^2 for the batch's SGD steps
                    shrink = (1.0 + spec.learning_rate * proximal_mu) ** -len(rows)
                    w = np.concatenate([self.estimator.coef_[0], self.estimator.intercept_])
                    w = start + (w - start) * shrink
                    self.estimator.coef_ = w[:-1].reshape(1, -1).copy()
                    self.estimator.intercept_ = w[-1:].copy()
        return {"loss": log_loss(y, self.predict_proba(X))}

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = _zero_missing(X) @ self.estimator.coef_[0] + self.estimator.intercept_[0]
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))  # type: ignore[no-any-return]

    def export(self, feature_names: Sequence[str]) -> Any:
        """``Pipeline([SimpleImputer(constant 0), SGDClassifier])``: serving fills missing values
        exactly as training did (0 is the training mean of a standard-scaled feature)."""
        import pandas as pd
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import SGDClassifier
        from sklearn.pipeline import Pipeline

        spec = self.spec
        imputer = SimpleImputer(strategy="constant", fill_value=0.0)
        # fitting a constant imputer learns nothing from the data: only the column names
        imputer.fit(pd.DataFrame(np.zeros((1, self.n_features)), columns=list(feature_names)))
        model = SGDClassifier(
            loss="log_loss", penalty="l2", alpha=spec.alpha, learning_rate="constant", eta0=spec.learning_rate
        )
        model.coef_ = self.estimator.coef_.copy()
        model.intercept_ = self.estimator.intercept_.copy()
        model.classes_ = np.array([0, 1])
        model.n_features_in_ = self.n_features
        model.t_ = 1.0
        model.n_iter_ = 1
        return Pipeline([("impute", imputer), ("sgd", model)])


class TorchModuleSpec(ModelSpec):
    """A PyTorch module from ``n_features`` inputs to one logit, trained with SGD on
    binary cross-entropy. The module travels as TorchScript (``torch.jit.script``), and its
    ``state_dict`` tensors are the weights.

    Args:
        module: An ``nn.Module`` (scriptable) or a ``torch.jit.ScriptModule``.
        learning_rate: SGD step size.
        local_epochs: Passes over the client's rows per round.
        batch_size: Rows per optimizer step.
    """

    def __init__(
        self, module: Any, learning_rate: float = 0.1, local_epochs: int = 1, batch_size: int = 64
    ) -> None:
        _positive_number("learning_rate", learning_rate)
        _positive_int("local_epochs", local_epochs)
        _positive_int("batch_size", batch_size)
        self.learning_rate = float(learning_rate)
        self.local_epochs = local_epochs
        self.batch_size = batch_size
        self.script = _to_torchscript(module)

    def build(self, n_features: int) -> TorchLocalModel:
        return TorchLocalModel(self, n_features)

    def to_config(self) -> dict[str, Any]:
        import torch

        buffer = io.BytesIO()
        with _quiet():
            torch.jit.save(self.script, buffer)
        return {
            "module": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "learning_rate": self.learning_rate,
            "local_epochs": self.local_epochs,
            "batch_size": self.batch_size,
        }


class TorchLocalModel:
    """The local model of :class:`TorchModuleSpec`."""

    def __init__(self, spec: TorchModuleSpec, n_features: int) -> None:
        import torch

        torch.set_num_threads(1)  # one client per process: several share the machine's cores
        self.spec = spec
        self.n_features = n_features
        buffer = io.BytesIO()
        with _quiet():
            torch.jit.save(spec.script, buffer)
            buffer.seek(0)
            self.module = torch.jit.load(buffer)  # type: ignore[no-untyped-call]  # a private copy
        self._keys = list(self.module.state_dict())
        self._start = self.get_weights()
        with torch.no_grad():
            out = self.module(torch.zeros((2, n_features), dtype=torch.float32))
        if tuple(out.shape) not in ((2,), (2, 1)):
            raise ValidationError(
                f"the torch module must map {n_features} transformed features to one logit per row; "
                f"its output shape for 2 rows is {tuple(out.shape)}"
            )

    def get_weights(self) -> list[np.ndarray]:
        return [t.detach().cpu().numpy().copy() for t in self.module.state_dict().values()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        import torch

        current = self.get_weights()
        arrays = _check_shapes(weights, [w.shape for w in current])
        state = {
            k: torch.from_numpy(np.array(a, dtype=c.dtype))
            for k, a, c in zip(self._keys, arrays, current, strict=True)
        }
        self.module.load_state_dict(state)
        self._start = [a.copy() for a in arrays]

    def fit(self, X: np.ndarray, y: np.ndarray, *, proximal_mu: float, seed: int) -> dict[str, float]:
        import torch

        torch.manual_seed(seed)
        if np.isnan(X).any():
            raise ValidationError(
                "the transformed features have missing values; a torch module needs complete rows "
                "(fill them in the feature pipeline, or use SGDClassifierSpec, which counts them as 0)"
            )
        inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        labels = torch.from_numpy(np.asarray(y, dtype=np.float32))
        params = [p for p in self.module.parameters() if p.requires_grad]
        start = [torch.from_numpy(np.array(p.detach().numpy(), copy=True)) for p in params]
        loss_fn = torch.nn.BCEWithLogitsLoss()
        self.module.train()
        # the profiling JIT recompiles during the first calls of a loaded script: seconds per client
        with _no_jit_profiling():
            self._epochs(inputs, labels, params, start, loss_fn, proximal_mu)
        self.module.eval()
        return {"loss": log_loss(y, self.predict_proba(X))}

    def _epochs(
        self, inputs: Any, labels: Any, params: list[Any], start: list[Any], loss_fn: Any, mu: float
    ) -> None:
        """Plain mini-batch SGD. (torch.optim's first step imports its compiler stack: ~3 s per
        client process for an update this loop does in microseconds.)"""
        import torch

        spec = self.spec
        for _ in range(spec.local_epochs):
            order = torch.randperm(len(labels))
            for begin in range(0, len(labels), spec.batch_size):
                rows = order[begin : begin + spec.batch_size]
                loss = loss_fn(self.module(inputs[rows]).reshape(-1), labels[rows])
                if mu > 0:
                    loss = loss + mu / 2 * sum(
                        ((p - s) ** 2).sum() for p, s in zip(params, start, strict=True)
                    )
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    for p, g in zip(params, grads, strict=True):
                        p -= spec.learning_rate * g

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad(), _no_jit_profiling():
            logits = self.module(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).reshape(-1)
            return torch.sigmoid(logits).numpy().astype(np.float64)  # type: ignore[no-any-return]

    def export(self, feature_names: Sequence[str]) -> Any:
        return self.module


# --- checks and shipping ------------------------------------------------------------------------
def as_spec(model: object) -> ModelSpec:
    """The spec of ``federated(model=...)``: a :class:`ModelSpec`, or a torch module (wrapped).

    Raises:
        ValidationError: anything else, e.g. a scikit-learn estimator, whose weights fti cannot
            read or replace.
    """
    if isinstance(model, ModelSpec):
        return model
    if _is_torch_module(model):
        return TorchModuleSpec(model)
    raise ValidationError(
        f"model {type(model).__name__} gives no access to its weights, which federated averaging "
        "exchanges; pass fti.training.SGDClassifierSpec(...), a torch.nn.Module, or a subclass of "
        "fti.training.federation.ModelSpec whose build() returns an object with get_weights() and "
        "set_weights()"
    )


def check_local_model(spec: ModelSpec, n_features: int) -> LocalModel:
    """Build the spec's model once and check its weight access (before any client starts)."""
    local = spec.build(n_features)
    if not isinstance(local, LocalModel):
        missing = [
            m
            for m in ("get_weights", "set_weights", "fit", "predict_proba", "export")
            if not hasattr(local, m)
        ]
        raise ValidationError(
            f"{type(spec).__name__}.build() returned {type(local).__name__}, which lacks {missing}; "
            "federated training needs get_weights()/set_weights() to exchange weights"
        )
    weights = local.get_weights()
    if not isinstance(weights, list) or not all(isinstance(w, np.ndarray) for w in weights) or not weights:
        raise ValidationError(
            f"{type(local).__name__}.get_weights() must return a non-empty list of numpy arrays, got {type(weights).__name__}"
        )
    local.set_weights(weights)
    return local


def spec_config(spec: ModelSpec) -> dict[str, Any]:
    """The JSON description of ``spec`` that clients rebuild with :func:`load_spec`."""
    cls = type(spec)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise ValidationError(
            f"model spec {cls.__qualname__} is defined in {cls.__module__}; define it at the top level "
            "of an importable module so client processes can rebuild it"
        )
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "params": spec.to_config()}


def load_spec(config: Mapping[str, Any]) -> ModelSpec:
    """Rebuild a spec from :func:`spec_config` output; only :class:`ModelSpec` subclasses."""
    path = str(config.get("class", ""))
    module_name, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValidationError(f"model spec class {path!r} cannot be imported here: {exc}") from None
    if not (isinstance(target, type) and issubclass(target, ModelSpec)):
        raise ValidationError(f"{path!r} is not a fti ModelSpec subclass; refusing to construct it")
    params = dict(config.get("params", {}))
    if target is TorchModuleSpec:
        return TorchModuleSpec(_from_torchscript(params.pop("module")), **params)
    return target(**params)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy (probabilities clipped away from 0 and 1)."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(y) else 0.0


@contextmanager
def _quiet() -> Iterator[None]:
    """TorchScript is deprecated in recent torch releases, but it is the format that loads without
    running Python code (the registry's pytorch flavor stores it too): silence that warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _no_jit_profiling() -> Any:
    import torch

    return torch.jit.optimized_execution(False)  # type: ignore[attr-defined]


def _zero_missing(X: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(X), 0.0, X) if np.isnan(X).any() else X


def _check_shapes(weights: Sequence[np.ndarray], shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    arrays = [np.asarray(w) for w in weights]
    got = [a.shape for a in arrays]
    if got != [tuple(s) for s in shapes]:
        raise ValidationError(f"weights have shapes {got}; this model's weights have shapes {list(shapes)}")
    return arrays


def _is_torch_module(model: object) -> bool:
    import sys

    torch = sys.modules.get("torch")  # a torch module exists only if torch was imported
    return torch is not None and isinstance(model, torch.nn.Module)


def _to_torchscript(module: Any) -> Any:
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        return module
    if not isinstance(module, torch.nn.Module):
        raise ValidationError(f"TorchModuleSpec needs a torch.nn.Module, got {type(module).__name__}")
    try:
        with _quiet():
            return torch.jit.script(module)
    except Exception as exc:
        raise ValidationError(
            f"the torch module cannot be compiled to TorchScript ({exc}); pass "
            "torch.jit.trace(module, example_input) instead"
        ) from None


def _from_torchscript(encoded: str) -> Any:
    import torch

    with _quiet():
        return torch.jit.load(io.BytesIO(base64.b64decode(encoded)))  # type: ignore[no-untyped-call]


def _positive_number(name: str, value: object, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValidationError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValidationError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name} must be an integer >= 1, got {value!r}")
