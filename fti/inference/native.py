"""The native scorer: the model's own library, through its flavor's prediction path.

:func:`native_predict` is the reference every other scorer must reproduce. A native classifier
with ``predict_proba`` and ``classes_`` can also be scored in one pass (``fused``): labels are
``classes_[argmax(proba)]``, which is what scikit-learn, XGBoost and LightGBM do inside
``predict``; :func:`fti.inference.selection.get_scorer` checks that against the real ``predict``
on the verification sample and keeps the two-pass path where it differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fti.inference.base import PredictFn, as_array

if TYPE_CHECKING:
    import numpy as np


class NativeScorer:
    """The model's own predict (one ``predict_proba`` pass for a ``fused`` classifier)."""

    kind = "native"

    def __init__(self, model: Any, predict_fn: PredictFn | None = None, *, fused: bool = False) -> None:
        self.model = model
        self._predict_fn = predict_fn or native_predict
        self.fused = fused

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        if self.fused:
            import numpy as np

            proba = np.asarray(self.model.predict_proba(named(self.model, X)))
            labels = np.asarray(self.model.classes_).take(proba.argmax(axis=1))
            return {"predict": labels, "predict_proba": proba}
        return {name: as_array(value) for name, value in self._predict_fn(self.model, X).items()}


def native_predict(model: Any, X: Any) -> dict[str, Any]:
    """The reference outputs of a native model: its flavor's ``predict`` (the one prediction path
    of serving and batch), or ``predict`` and ``predict_proba`` for objects of no known flavor."""
    from fti.errors import FtiError
    from fti.registry.flavors.base import detect_flavor

    try:
        flavor = detect_flavor(model)
    except FtiError:
        flavor = None
    if flavor is not None:
        return dict(flavor.predict(model, X))
    X = named(model, X)
    out = {"predict": model.predict(X)}
    if hasattr(model, "predict_proba"):
        out["predict_proba"] = model.predict_proba(X)
    return out


def can_fuse(model: Any, reference: dict[str, np.ndarray]) -> bool:
    """Whether the one-pass path can produce ``reference``'s outputs (labels and probabilities
    over ``model.classes_``); it is used only if it also reproduces them."""
    proba = reference.get("predict_proba")
    return (
        proba is not None
        and set(reference) == {"predict", "predict_proba"}
        and proba.ndim == 2
        and len(getattr(model, "classes_", ())) == proba.shape[1]
    )


def family(model: Any) -> str:
    """The library a native model object comes from (``sklearn``, ``xgboost``, ``lightgbm``...)."""
    return type(model).__module__.split(".")[0]


def named(model: Any, X: np.ndarray) -> Any:
    """``X`` as the model expects it: a DataFrame with its column names if it was fitted on one
    (as the flavors do, so libraries don't warn about missing feature names)."""
    names: Any = None
    if family(model) == "xgboost":
        # XGBoost checks feature names only on frames and reads an array by position, in the
        # fitted order: building a frame per call would cost ~30% of a 16k-row predict
        return X
    if getattr(model, "_fitted_with_feature_names", False):  # LightGBM's scikit-learn API
        names = model.feature_name_
    elif family(model) != "lightgbm":
        names = getattr(model, "feature_names_in_", None)
    if names is None:
        return X
    from fti.registry.flavors.base import align_input

    return align_input(X, [str(n) for n in names])
