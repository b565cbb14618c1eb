"""The flavor Protocol, the flavor table and detection of a model object's flavor.

A flavor saves a native model object into a directory of files in a format that loads without
unpickling (skops, XGBoost UBJ/JSON, LightGBM text, ONNX, TorchScript), loads it back, and
predicts with it. ``predict`` is the one prediction path: serving and batch inference both call
it with a 2-D numpy array or a pandas DataFrame whose columns are the signature's inputs in order,
and get ``{"predict": array, ...}`` with the signature's outputs.

Each flavor module imports its library lazily, so detecting the flavor of an object never imports
a library the object does not come from.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fti.errors import BackendError, ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# flavor name -> "module:Class"; detection tries them in this order (specific libraries before
# scikit-learn, whose BaseEstimator the XGBoost and LightGBM wrappers subclass).
FLAVORS: dict[str, str] = {
    "pyfunc": "fti.registry.flavors.pyfunc:PyFuncFlavor",
    "pytorch": "fti.registry.flavors.pytorch:PyTorchFlavor",
    "onnx": "fti.registry.flavors.onnx:OnnxFlavor",
    "xgboost": "fti.registry.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "fti.registry.flavors.lightgbm:LightGBMFlavor",
    "sklearn": "fti.registry.flavors.sklearn:SklearnFlavor",
}


class Flavor(Protocol):
    """Save, load and predict with one kind of model."""

    name: str

    def matches(self, model: object) -> bool:
        """Whether ``model`` is an object of this flavor (cheap; imports nothing new)."""
        ...

    def save(self, model: Any, directory: Path, *, example: Any = None, **options: Any) -> dict[str, Any]:
        """Write ``model`` as files into the empty ``directory``.

        Returns:
            The JSON-serialisable options ``load`` needs (file names, class names, trusted
            types...); they are stored in the catalog with the version.
        """
        ...

    def load(self, directory: Path, options: dict[str, Any]) -> Any:
        """Load the native model object from the files ``save`` wrote (digests already verified)."""
        ...

    def predict(self, model: Any, X: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
        """Predict on a 2-D array or a DataFrame of the signature's inputs in order.

        Returns:
            ``{"predict": array}`` plus ``"predict_proba"`` for classifiers that have it.
        """
        ...


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name`` (one of :data:`FLAVORS`)."""
    target = FLAVORS.get(name)
    if target is None:
        raise ValidationError(
            f"unknown model flavor {name!r}; supported flavors: {', '.join(sorted(FLAVORS))}"
        )
    module_name, class_name = target.split(":")
    flavor: Flavor = getattr(importlib.import_module(module_name), class_name)()
    return flavor


def detect_flavor(model: object) -> Flavor:
    """The flavor of a native model object; ``ValidationError`` listing the flavors otherwise."""
    for name in FLAVORS:
        flavor = get_flavor(name)
        if flavor.matches(model):
            return flavor
    raise ValidationError(
        f"cannot register a model of type {type(model).__module__}.{type(model).__qualname__}: supported "
        f"flavors are {', '.join(sorted(FLAVORS))} (scikit-learn estimators and pipelines, XGBoost and "
        "LightGBM models, onnx.ModelProto, TorchScript modules, fti.registry.flavors.pyfunc.PythonModel). "
        "Pickled or arbitrary Python objects are not accepted because loading them would execute code."
    )


def require(module: str, extra: str) -> Any:
    """Import a flavor's library, or ``BackendError`` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendError(
            f"this model flavor needs the {module.split('.')[0]!r} package: pip install 'fti[{extra}]'"
        ) from exc


def reject_options(flavor: str, options: dict[str, Any]) -> None:
    """``ValidationError`` for save options a flavor does not understand."""
    if options:
        raise ValidationError(
            f"the {flavor} flavor takes no save option(s) {sorted(options)}; remove them "
            "(trusted_types is for sklearn, save_options={'format': ...} for xgboost)"
        )


def library_loaded(prefix: str) -> bool:
    """Whether the library ``prefix`` is imported (an object of it can exist only if so)."""
    return prefix in sys.modules


def align_input(X: Any, feature_names: list[str] | None) -> Any:
    """Give the model the input shape it was fitted with.

    A model fitted on a DataFrame gets a DataFrame with its feature names (a numpy input is
    labelled in order); a model fitted on an array gets an array.
    """
    import numpy as np
    import pandas as pd

    if feature_names is not None:
        if isinstance(X, pd.DataFrame):
            return X
        array = np.asarray(X)
        if array.ndim != 2 or array.shape[1] != len(feature_names):
            raise ValidationError(
                f"the model expects {len(feature_names)} input columns {feature_names}, got an array of "
                f"shape {array.shape}"
            )
        return pd.DataFrame(array, columns=feature_names).infer_objects()
    if isinstance(X, pd.DataFrame):
        return X.to_numpy()
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValidationError(f"model input must be 2-D (rows x features), got shape {array.shape}")
    return array


def estimator_outputs(model: Any, X: Any, feature_names: Any = None) -> dict[str, np.ndarray]:
    """The outputs of a scikit-learn-style estimator: ``predict``, plus ``predict_proba`` for a
    classifier. ``X`` is aligned to ``feature_names`` (the names the model was fitted with) first."""
    data = align_input(X, None if feature_names is None else [str(n) for n in feature_names])
    outputs = {"predict": as_array(model.predict(data))}
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        outputs["predict_proba"] = as_array(model.predict_proba(data))
    return outputs


def as_array(values: Any) -> np.ndarray:
    """A numpy array from a prediction (pandas, lists, arrays)."""
    import numpy as np

    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    return np.asarray(values)
