"""The one-pass native scorer: ``predict_proba`` once, labels ``classes_[argmax]``, identical to the
flavor's two-pass ``predict`` + ``predict_proba`` for every estimator family it is used for."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from fti.inference.native import FUSABLE, NativeScorer, fusable
from fti.registry.flavors.base import detect_flavor

rng = np.random.default_rng(11)
X = rng.normal(size=(400, 4))
# a grid of repeated values: ties between neighbours, leaves and votes happen
X_TIES = np.round(rng.normal(size=(400, 4)), 0)
BINARY = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64)
MULTI = np.digitize(X[:, 0] + X[:, 3], [-0.7, 0.7])
NAMES = np.array(["low", "mid", "high"], dtype=object)


def _sklearn(name: str) -> Any:
    from sklearn import (
        calibration,
        discriminant_analysis,
        ensemble,
        linear_model,
        naive_bayes,
        neighbors,
        neural_network,
        tree,
    )

    small = {"random_state": 0}
    made: dict[str, Any] = {
        "AdaBoostClassifier": lambda: ensemble.AdaBoostClassifier(n_estimators=10, **small),
        "BernoulliNB": naive_bayes.BernoulliNB,
        "CalibratedClassifierCV": lambda: calibration.CalibratedClassifierCV(
            linear_model.LogisticRegression(), cv=3
        ),
        "CategoricalNB": lambda: naive_bayes.CategoricalNB(min_categories=8),
        "ComplementNB": naive_bayes.ComplementNB,
        "DecisionTreeClassifier": lambda: tree.DecisionTreeClassifier(max_depth=4, **small),
        "ExtraTreeClassifier": lambda: tree.ExtraTreeClassifier(max_depth=4, **small),
        "ExtraTreesClassifier": lambda: ensemble.ExtraTreesClassifier(8, max_depth=4, **small),
        "GaussianNB": naive_bayes.GaussianNB,
        "GradientBoostingClassifier": lambda: ensemble.GradientBoostingClassifier(n_estimators=10),
        "HistGradientBoostingClassifier": lambda: ensemble.HistGradientBoostingClassifier(max_iter=10),
        "KNeighborsClassifier": lambda: neighbors.KNeighborsClassifier(4),
        "LinearDiscriminantAnalysis": discriminant_analysis.LinearDiscriminantAnalysis,
        "LogisticRegression": linear_model.LogisticRegression,
        "LogisticRegressionCV": lambda: linear_model.LogisticRegressionCV(cv=3),
        "MLPClassifier": lambda: neural_network.MLPClassifier((8,), max_iter=50, **small),
        "MultinomialNB": naive_bayes.MultinomialNB,
        "QuadraticDiscriminantAnalysis": discriminant_analysis.QuadraticDiscriminantAnalysis,
        "RandomForestClassifier": lambda: ensemble.RandomForestClassifier(8, max_depth=4, **small),
    }
    return made[name]()


def _model(library: str, name: str) -> Any:
    if library == "sklearn":
        return _sklearn(name)
    if library == "lightgbm":
        import lightgbm as lgb

        return lgb.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1, n_jobs=1)
    import xgboost as xgb

    return getattr(xgb, name)(n_estimators=10, max_depth=3, n_jobs=1)


LABELS = ["binary_int", "multiclass_int", "multiclass_str", "binary_str"]
CASES = [
    (library, name, labels)
    for library, names in FUSABLE.items()
    for name in sorted(names)
    for labels in LABELS
    if not (library == "xgboost" and labels.endswith("_str"))  # XGBoost takes labels 0..n-1 only
]


def _inputs(name: str, X: np.ndarray) -> np.ndarray:
    """Count-like inputs for the naive Bayes models that need non-negative values or categories."""
    if name in {"MultinomialNB", "ComplementNB", "CategoricalNB"}:
        return np.clip(np.round(X + 3), 0, 7)
    return X


@pytest.mark.parametrize(("library", "name", "labels"), CASES)
@pytest.mark.parametrize("data", ["continuous", "ties"])
def test_fused_outputs_equal_the_flavors_two_passes(library: str, name: str, labels: str, data: str) -> None:
    y = {
        "binary_int": BINARY,
        "multiclass_int": MULTI * 10 + 5,
        "multiclass_str": NAMES[MULTI],
        "binary_str": NAMES[BINARY],
    }[labels]
    if library == "xgboost":
        y = MULTI if labels == "multiclass_int" else BINARY
    train = _inputs(name, X if data == "continuous" else X_TIES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of small fits
        model = _model(library, name).fit(train, y)
    assert fusable(model)
    flavor = detect_flavor(model)
    scorer = NativeScorer.of(model, flavor.predict)
    assert scorer.fused
    rows = _inputs(name, np.concatenate([X_TIES, rng.normal(size=(200, 4))]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = flavor.predict(model, rows)
        got = scorer.predict(rows)
    assert set(got) == set(expected) == {"predict", "predict_proba"}
    for output in expected:
        assert got[output].dtype == expected[output].dtype, output
        np.testing.assert_array_equal(got[output], expected[output])


def test_a_tie_is_broken_as_the_estimator_breaks_it() -> None:
    """GradientBoostingClassifier says the positive class at a raw score of exactly 0, where both
    probabilities are 0.5 and argmax says the first class: the fused path asks predict there."""
    from sklearn.ensemble import GradientBoostingClassifier

    flat = np.zeros((10, 2))
    model = GradientBoostingClassifier(n_estimators=3).fit(flat, np.array(["a", "b"] * 5))
    proba = model.predict_proba(flat)
    assert (proba == 0.5).all() and (model.classes_.take(proba.argmax(axis=1)) == "a").all()
    assert (model.predict(flat) == "b").all()
    out = NativeScorer.of(model).predict(flat)
    assert (out["predict"] == "b").all()


def test_a_pipeline_is_fused_by_its_last_step() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    forest = make_pipeline(StandardScaler(), _sklearn("RandomForestClassifier")).fit(X, NAMES[MULTI])
    assert fusable(forest)
    np.testing.assert_array_equal(NativeScorer.of(forest).predict(X)["predict"], forest.predict(X))
    assert not fusable(make_pipeline(StandardScaler(), SVC()).fit(X, BINARY))


def test_estimators_whose_predict_is_not_the_argmax_are_not_fused() -> None:
    """SVC's probabilities come from a separate Platt scaling: its predict can disagree with them."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability=True is deprecated in 1.9
        svc = SVC(probability=True, random_state=0).fit(X, MULTI)
    proba_labels = svc.classes_.take(svc.predict_proba(X).argmax(axis=1))
    assert (proba_labels != svc.predict(X)).any()  # why it is excluded
    assert not fusable(svc)
    assert not NativeScorer.of(svc).fused
    assert not fusable(OneVsRestClassifier(SVC()).fit(X, MULTI))
    assert not fusable(RandomForestRegressor(4).fit(X, X[:, 0]))
    multi_output = _sklearn("RandomForestClassifier").fit(X, np.column_stack([BINARY, MULTI]))
    assert not fusable(multi_output)


def test_fused_native_scorer_calls_the_model_once() -> None:
    """The point of fusing: one model pass per request (predict is called only on tied rows)."""
    model = _sklearn("RandomForestClassifier").fit(X, BINARY)
    calls: list[str] = []

    class Counting(type(model)):  # type: ignore[misc]
        def predict(self, X: Any) -> Any:
            calls.append("predict")
            return super().predict(X)

        def predict_proba(self, X: Any) -> Any:
            calls.append("predict_proba")
            return super().predict_proba(X)

    model.__class__ = Counting
    Counting.__name__ = "RandomForestClassifier"
    Counting.__module__ = "sklearn.ensemble._forest"
    scorer = NativeScorer.of(model)
    assert scorer.fused
    scorer.predict(X[:1] + 100.0)  # far from any tie
    assert calls == ["predict_proba"]
