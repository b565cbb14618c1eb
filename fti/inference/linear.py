"""Linear models split into weights and a head: what factorized scoring needs from a model.

A scikit-learn linear model (``LogisticRegression``, ``LinearRegression``, ``Ridge``,
``LinearSVC``, ``SGDClassifier``/``SGDRegressor``...) scores ``X`` through its decision
``X @ coef_.T + intercept_`` and then its own link (sigmoid, softmax, one-vs-rest normalisation,
argmax over ``classes_``, or none). :func:`linear_form` splits it into the weights ``coef_``,
which the feature store applies per group row (:mod:`fti.features.factorized`), and a *head*:
a copy of the model whose weights are the identity, so that given the decision values it
returns exactly the model's outputs, through the model's own code (nothing of the link is
re-implemented here). The split is verified: the head over ``X @ W.T`` must reproduce the
model on a sample before it is used.

:class:`FactorizedScorer` is the :class:`~fti.inference.base.Scorer` of that head (kind
``"factorized"``); its input matrix holds the decision values without the intercept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.inference.base import PredictFn, as_array

if TYPE_CHECKING:
    import numpy as np

KIND = "factorized"
LINEAR_MODULES = ("sklearn.linear_model.", "sklearn.svm._classes.")
"""Where scikit-learn's linear models live (a registered model's class is checked against these
before it is loaded: any other model is not linear)."""
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LinearForm:
    """A linear model as ``weights`` (K x inputs) and the head applied to ``X @ weights.T``."""

    weights: np.ndarray
    head: Any
    predict_fn: PredictFn

    def scorer(self, offset: np.ndarray | None = None) -> FactorizedScorer:
        """The scorer of decision values missing ``offset`` (added to the head's intercept: the
        constant that folded scalers leave, see :class:`fti.features.factorized.LinearScores`)."""
        import numpy as np

        head = self.head
        if offset is not None and np.any(offset):
            head = copy.copy(head)
            intercept = np.asarray(head.intercept_, dtype=np.float64)
            shifted = intercept + offset.reshape(intercept.shape or (1,))
            head.intercept_ = shifted if intercept.ndim else float(shifted[0])
        return FactorizedScorer(head, self.predict_fn)


class FactorizedScorer:
    """Scores decision values (``X @ coef_.T`` per row, computed elsewhere) with a linear model's
    own link: ``predict``/``predict_proba`` exactly as the model's flavor returns them."""

    kind = KIND

    def __init__(self, head: Any, predict_fn: PredictFn) -> None:
        self.model = head
        self.classes = getattr(head, "classes_", None)
        self._predict_fn = predict_fn

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        return {name: as_array(value) for name, value in self._predict_fn(self.model, X).items()}


def is_linear_class(qualified_name: str) -> bool:
    """Whether a model class (``module.Class``) may be a scikit-learn linear model."""
    return qualified_name.startswith(LINEAR_MODULES)


def linear_form(model: Any, predict_fn: PredictFn) -> LinearForm | None:
    """``model`` as weights and a head, or None when it is not a linear model whose outputs the
    head reproduces (to 1e-9 on a random sample: linearity holds for every input, so a sample
    the model has never seen checks it as well as real rows)."""
    import numpy as np

    if not type(model).__module__.startswith(("sklearn.linear_model", "sklearn.svm")):
        return None
    coef = getattr(model, "coef_", None)
    intercept = getattr(model, "intercept_", None)
    if coef is None or intercept is None or getattr(coef, "ndim", 0) not in (1, 2) or hasattr(coef, "tocsr"):
        return None
    coef = np.asarray(coef, dtype=np.float64)
    weights = np.atleast_2d(coef)
    outputs = weights.shape[0]
    head = copy.copy(model)
    head.coef_ = np.eye(outputs) if coef.ndim == 2 else np.ones(1)
    head.n_features_in_ = outputs
    if hasattr(head, "feature_names_in_"):
        del head.feature_names_in_
    form = LinearForm(weights, head, predict_fn)
    return form if _reproduces(form, model) else None


def _reproduces(form: LinearForm, model: Any) -> bool:
    """The head over ``X @ W.T`` gives the model's outputs on a random sample."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(0.0, 1.0, (257, form.weights.shape[1]))
    try:
        expected = {name: as_array(v) for name, v in form.predict_fn(model, X).items()}
        got = FactorizedScorer(form.head, form.predict_fn).predict(X @ form.weights.T)
    except Exception:  # not scoreable this way: not a candidate
        return False
    if set(got) != set(expected):
        return False
    for name, value in expected.items():
        if value.shape != got[name].shape:
            return False
        if value.dtype.kind in "fc":
            if not np.allclose(got[name], value, rtol=_TOLERANCE, atol=_TOLERANCE):
                return False
        elif not np.array_equal(got[name], value):
            return False
    return True
