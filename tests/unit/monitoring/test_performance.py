"""Realized metrics against scikit-learn, and CBPE within 0.02 of the realized value."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from fti.errors import ValidationError
from fti.monitoring import performance


def test_binary_and_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.3).astype(int)
    scores = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    scores[:20] = 0.5  # ties and the threshold itself
    got = performance.binary_metrics(y, scores)
    predicted = (scores > 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y, predicted))
    assert got["precision"] == pytest.approx(metrics.precision_score(y, predicted))
    assert got["recall"] == pytest.approx(metrics.recall_score(y, predicted))
    assert got["f1"] == pytest.approx(metrics.f1_score(y, predicted))
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, scores))
    assert got["log_loss"] == pytest.approx(metrics.log_loss(y, scores))
    assert performance.roc_auc(np.ones(5), np.arange(5.0)) is None
    truth, guess = rng.normal(10, 3, 300), rng.normal(10, 3, 300)
    reg = performance.regression_metrics(truth, guess)
    assert reg["mae"] == pytest.approx(metrics.mean_absolute_error(truth, guess))
    assert reg["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(truth, guess)))
    assert reg["mape"] == pytest.approx(metrics.mean_absolute_percentage_error(truth, guess))
    labels, predicted3 = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    proba = rng.dirichlet([1, 1, 1], 200)
    multi = performance.multiclass_metrics(labels, predicted3, proba)
    assert multi["f1"] == pytest.approx(metrics.f1_score(labels, predicted3, average="macro"))
    assert multi["log_loss"] == pytest.approx(metrics.log_loss(labels, proba))


def test_isotonic_calibration_equals_sklearn() -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(1)
    scores = rng.random(2_000) ** 2  # a miscalibrated model
    labels = (rng.random(2_000) < np.sqrt(scores)).astype(int)
    calibration = performance.calibrate(scores, labels)
    reference = IsotonicRegression(out_of_bounds="clip").fit(scores, labels)
    grid = np.linspace(-0.1, 1.1, 777)
    np.testing.assert_allclose(calibration.apply(grid), reference.predict(grid), atol=1e-12)
    assert len(calibration.x) < 2_000  # constant runs keep only their ends
    again = performance.Calibration.from_dict(calibration.to_dict())
    np.testing.assert_array_equal(again.apply(grid), calibration.apply(grid))
    with pytest.raises(ValidationError, match="one label per score"):
        performance.calibrate(np.array([0.1]), np.array([]))


def test_cbpe_is_within_two_hundredths_of_the_realized_value_over_20_windows() -> None:
    """A calibrated model (labels drawn with the score's probability), calibrated on its test
    split, then 20 windows whose score distributions shift (covariate shift): CBPE's estimated
    accuracy and ROC AUC stay within 0.02 of what the labels later show."""
    rng = np.random.default_rng(5)
    test_scores = rng.beta(2, 5, 20_000)
    calibration = performance.calibrate(test_scores, rng.random(20_000) < test_scores)
    worst = 0.0
    for window in range(20):
        a, b = 1 + window * 0.15, 5 - window * 0.15  # the positive share drifts up
        scores = rng.beta(a, b, 10_000)
        labels = (rng.random(10_000) < scores).astype(int)
        estimator = performance.CbpeEstimator(calibration)
        for chunk in np.array_split(scores, 7):  # fed as a stream
            estimator.update(chunk)
        estimated = estimator.estimate()
        realized = performance.binary_metrics(labels, scores)
        for metric in ("accuracy", "roc_auc"):
            worst = max(worst, abs(estimated[metric] - realized[metric]))  # type: ignore[operator]
    assert worst <= 0.02, worst
    assert performance.CbpeEstimator(calibration).estimate() == {}
