"""The native scorer: the model's own library, through its flavor's prediction path.

:func:`native_predict` is the reference every other scorer must reproduce. A classifier of a
family listed in :data:`FUSABLE` is scored in one pass (``fused``): ``predict_proba``, and the
labels ``classes_[argmax(proba)]``. For those estimators ``predict`` is the argmax of a score that
``predict_proba`` maps to probabilities by a non-decreasing function (the probabilities
themselves for forests, trees, LightGBM and the calibrated/voting wrappers; the logistic or
softmax of the decision function for boosting and linear models; a threshold at 0 or 0.5 in the
binary case), so the two agree on every row whose highest probability is unique. Where the two
highest probabilities tie (within :data:`TIE`) the estimator's own tie-break decides (scikit-learn's
``GradientBoostingClassifier`` says the positive class at a raw score of exactly 0, ``argmax`` the
first), so those rows are re-labelled by the model's ``predict``. Other estimators (``SVC``, whose
probabilities come from a separate Platt scaling, one-vs-rest wrappers, anything unknown) keep the
two-pass path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fti.inference.base import PredictFn, as_array

if TYPE_CHECKING:
    import numpy as np

FUSABLE = {
    "sklearn": frozenset(
        {
            "AdaBoostClassifier",
            "BernoulliNB",
            "CalibratedClassifierCV",
            "CategoricalNB",
            "ComplementNB",
            "DecisionTreeClassifier",
            "ExtraTreeClassifier",
            "ExtraTreesClassifier",
            "GaussianNB",
            "GradientBoostingClassifier",
            "HistGradientBoostingClassifier",
            "KNeighborsClassifier",
            "LinearDiscriminantAnalysis",
            "LogisticRegression",
            "LogisticRegressionCV",
            "MLPClassifier",
            "MultinomialNB",
            "QuadraticDiscriminantAnalysis",
            "RandomForestClassifier",
        }
    ),
    "lightgbm": frozenset({"LGBMClassifier"}),
    "xgboost": frozenset({"XGBClassifier", "XGBRFClassifier"}),
}
"""Classifiers whose ``predict`` is ``classes_[argmax(predict_proba)]`` up to ties (see the
module docstring), by library; a scikit-learn ``Pipeline`` is judged by its last step."""
TIE = 1e-12
"""Rows whose two highest probabilities are closer than this are labelled by ``predict``: far
above the rounding of a monotone map to probabilities (2.2e-16 near 1), far below a real margin."""


class NativeScorer:
    """The model's own predict (one ``predict_proba`` pass for a ``fused`` classifier)."""

    kind = "native"

    def __init__(self, model: Any, predict_fn: PredictFn | None = None, *, fused: bool = False) -> None:
        self.model = model
        self._predict_fn = predict_fn or native_predict
        self.fused = fused
        self._classes: Any = None
        if fused:
            import numpy as np

            self._classes = np.asarray(model.classes_)

    @classmethod
    def of(cls, model: Any, predict_fn: PredictFn | None = None) -> NativeScorer:
        """The native scorer of ``model``: fused when its family guarantees it (:func:`fusable`)."""
        return cls(model, predict_fn, fused=fusable(model))

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        if self.fused:
            return self._fused(X)
        return {name: as_array(value) for name, value in self._predict_fn(self.model, X).items()}

    def _fused(self, X: np.ndarray) -> dict[str, np.ndarray]:
        import numpy as np

        data = named(self.model, X)
        proba = as_array(self.model.predict_proba(data))
        best = proba.argmax(axis=1)
        labels = self._classes.take(best)
        if proba.shape[1] > 1 and len(proba):
            top = proba[np.arange(len(proba)), best]
            second = proba.min(axis=1) if proba.shape[1] == 2 else np.partition(proba, -2, axis=1)[:, -2]
            tied = np.flatnonzero(top - second <= TIE)
            if len(tied):  # the estimator's own tie-break (see the module docstring)
                rows = data.iloc[tied] if hasattr(data, "iloc") else data[tied]
                labels[tied] = as_array(self.model.predict(rows))
        return {"predict": labels, "predict_proba": proba}


def fusable(model: Any) -> bool:
    """Whether ``model``'s ``predict`` is ``classes_[argmax(predict_proba)]`` up to ties: a
    single-output classifier of a family in :data:`FUSABLE` (a pipeline: its last step)."""
    import numpy as np

    estimator = model
    while type(estimator).__name__ == "Pipeline" and family(estimator) == "sklearn":
        estimator = estimator.steps[-1][1]
    names = FUSABLE.get(family(estimator))
    if names is None or type(estimator).__name__ not in names:
        return False
    classes = getattr(model, "classes_", None)
    # a multi-output classifier has a list of class arrays (and a list of probability matrices)
    return isinstance(classes, np.ndarray) and classes.ndim == 1 and hasattr(model, "predict_proba")


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
