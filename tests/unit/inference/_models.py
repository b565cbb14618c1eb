"""Fitted models of every supported family, shared by the scorer tests, and their comparison."""

from __future__ import annotations

from typing import Any

import numpy as np

rng = np.random.default_rng(7)
X_TRAIN = rng.normal(size=(600, 6))
Y_CLASS = (X_TRAIN[:, 0] + X_TRAIN[:, 1] * X_TRAIN[:, 2] > 0).astype(np.int64)
Y_MULTI = np.digitize(X_TRAIN[:, 0] + X_TRAIN[:, 3], [-0.7, 0.7])
Y_VALUE = X_TRAIN[:, 0] * 3 + np.sin(X_TRAIN[:, 1]) * 10
X_TEST = rng.normal(size=(3000, 6))


def _models() -> dict[str, tuple[Any, set[str]]]:
    """name -> (fitted model, scorer kinds that may be chosen with prefer='converted')."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    lgb_options = {"n_estimators": 15, "num_leaves": 8, "verbose": -1, "n_jobs": 1}
    return {
        "rf": (RandomForestClassifier(12, max_depth=5, random_state=0).fit(X_TRAIN, Y_CLASS), {"onnx"}),
        "rf_multiclass": (
            RandomForestClassifier(8, max_depth=4, random_state=0).fit(X_TRAIN, Y_MULTI),
            {"onnx"},
        ),
        "rf_regressor": (
            RandomForestRegressor(8, max_depth=5, random_state=0).fit(X_TRAIN, Y_VALUE),
            {"onnx"},
        ),
        "gb": (GradientBoostingClassifier(n_estimators=15, max_depth=3).fit(X_TRAIN, Y_CLASS), {"onnx"}),
        "pipeline": (
            make_pipeline(StandardScaler(), RandomForestClassifier(8, max_depth=4, random_state=0)).fit(
                X_TRAIN, Y_CLASS
            ),
            {"onnx"},
        ),
        "hgb": (HistGradientBoostingClassifier(max_iter=15).fit(X_TRAIN, Y_CLASS), {"onnx"}),
        "hgb_multiclass": (HistGradientBoostingClassifier(max_iter=10).fit(X_TRAIN, Y_MULTI), {"onnx"}),
        "hgb_regressor": (HistGradientBoostingRegressor(max_iter=15).fit(X_TRAIN, Y_VALUE), {"onnx"}),
        "xgb": (xgb.XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1).fit(X_TRAIN, Y_CLASS), {"native"}),
        "lgb": (lgb.LGBMClassifier(**lgb_options).fit(X_TRAIN, Y_CLASS), {"compiled", "onnx"}),
        "lgb_multiclass": (lgb.LGBMClassifier(**lgb_options).fit(X_TRAIN, Y_MULTI), {"compiled", "onnx"}),
        "lgb_regressor": (lgb.LGBMRegressor(**lgb_options).fit(X_TRAIN, Y_VALUE), {"compiled", "onnx"}),
    }


MODELS = _models()


def assert_same(got: dict[str, np.ndarray], expected: dict[str, Any]) -> None:
    assert set(got) == set(expected)
    if np.asarray(expected["predict"]).dtype.kind == "f":  # regression: float32 trees are allowed
        np.testing.assert_allclose(got["predict"], expected["predict"], rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(got["predict"], np.asarray(expected["predict"]))
    if "predict_proba" in expected:
        np.testing.assert_allclose(got["predict_proba"], expected["predict_proba"], rtol=0, atol=1e-5)
        assert got["predict_proba"].dtype == np.asarray(expected["predict_proba"]).dtype
