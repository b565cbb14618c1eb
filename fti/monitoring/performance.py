"""Model performance: realized metrics once labels exist, and CBPE estimates before they do.

**Realized** (labels joined to predictions): for classifiers accuracy, precision, recall, F1
(of the positive class for binary models, macro-averaged otherwise), ROC AUC (binary, from the
ranks of the scores: the Mann-Whitney statistic, ties counted half) and log loss; for regressors
MAE, RMSE and MAPE (relative to ``max(|y|, machine epsilon)``, as scikit-learn does). Each
equals scikit-learn's definition (tested against it).

**Estimated** (no labels; binary classifiers): confidence-based performance estimation (CBPE,
as NannyML does it). The model's scores are first calibrated on its labelled test split (isotonic
regression, :func:`calibrate`, scipy's pool-adjacent-violators); then each scored row counts as
``p`` of a positive and ``1 - p`` of a negative, where ``p`` is its calibrated score, which gives
the expected confusion matrix (accuracy, precision, recall, F1) and the expected ROC curve (AUC).
:class:`CbpeEstimator` accumulates a window batch by batch in fixed memory: sums for the
confusion matrix, and the expected positives and negatives per score bin (10,000 bins on
``[0, 1]``) for the AUC. A row is predicted positive when its score is above 0.5, as the
``predict`` of a probabilistic classifier does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fti.errors import ValidationError

CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSOR_METRICS = ("mae", "rmse", "mape")
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
SCORE_BINS = 10_000
THRESHOLD = 0.5
_EPS = float(np.finfo(np.float64).eps)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of binary labels (1 = positive) from the ranks of the scores; None with one class."""
    from scipy.stats import rankdata

    positives = int(np.count_nonzero(y))
    negatives = len(y) - positives
    if not positives or not negatives:
        return None
    ranks = rankdata(scores)
    return float((ranks[y.astype(bool)].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """Realized metrics of a binary classifier: ``y`` 0/1, ``scores`` the positive class's probability."""
    y = np.asarray(y, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    predicted = scores > THRESHOLD
    actual = y == 1
    tp = float(np.count_nonzero(predicted & actual))
    fp = float(np.count_nonzero(predicted & ~actual))
    fn = float(np.count_nonzero(~predicted & actual))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    clipped = np.clip(scores, 1e-15, 1 - 1e-15)
    log_loss = float(-np.mean(np.where(actual, np.log(clipped), np.log(1 - clipped))))
    return {
        "accuracy": float(np.mean(predicted == actual)),
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "roc_auc": roc_auc(y, scores),
        "log_loss": log_loss,
    }


def multiclass_metrics(
    y: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None
) -> dict[str, float | None]:
    """Realized metrics of a multi-class classifier: ``y`` and ``predicted`` as class indices,
    ``proba`` the class probabilities (columns in class order) or None."""
    y = np.asarray(y)
    predicted = np.asarray(predicted)
    classes = np.union1d(y, predicted)
    precisions, recalls, f1s = [], [], []
    for c in classes:
        tp = float(np.count_nonzero((predicted == c) & (y == c)))
        precision = _ratio(tp, float(np.count_nonzero(predicted == c)))
        recall = _ratio(tp, float(np.count_nonzero(y == c)))
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(_f1(precision, recall))
    out: dict[str, float | None] = {
        "accuracy": float(np.mean(predicted == y)),
        "precision": float(np.mean(precisions)),
        "recall": float(np.mean(recalls)),
        "f1": float(np.mean(f1s)),
        "roc_auc": None,
        "log_loss": None,
    }
    if proba is not None:
        p = np.clip(proba[np.arange(len(y)), y.astype(np.int64)], 1e-15, 1.0)
        out["log_loss"] = float(-np.mean(np.log(p)))
    return out


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    y = np.asarray(y, dtype=np.float64)
    error = np.asarray(predicted, dtype=np.float64) - y
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error * error))),
        "mape": float(np.mean(np.abs(error) / np.maximum(np.abs(y), _EPS))),
    }


@dataclass(frozen=True)
class Calibration:
    """A monotone map from scores to probabilities: linear between the points ``(x, y)``,
    constant beyond them (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``)."""

    x: np.ndarray
    y: np.ndarray

    def apply(self, scores: np.ndarray) -> np.ndarray:
        calibrated: np.ndarray = np.clip(np.interp(scores, self.x, self.y), 0.0, 1.0)
        return calibrated

    def to_dict(self) -> dict[str, Any]:
        return {"x": [float(v) for v in self.x], "y": [float(v) for v in self.y]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(np.asarray(data["x"], dtype=np.float64), np.asarray(data["y"], dtype=np.float64))


def calibrate(scores: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit the isotonic calibration of binary ``labels`` (0/1) on ``scores``."""
    from scipy.optimize import isotonic_regression

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if len(scores) != len(labels) or not len(scores):
        raise ValidationError("calibration needs one label per score and at least one row")
    keep = ~np.isnan(scores)
    unique, inverse, counts = np.unique(scores[keep], return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=labels[keep]) / counts
    fitted = isotonic_regression(means, weights=counts).x
    # keep the first and last point of every constant run: the same piecewise-linear function
    change = np.flatnonzero(np.diff(fitted) != 0)
    keep_points = np.unique(np.concatenate([[0, len(fitted) - 1], change, change + 1]))
    return Calibration(unique[keep_points], fitted[keep_points])


class CbpeEstimator:
    """CBPE of a binary classifier over a stream of scores (see the module docs)."""

    def __init__(self, calibration: Calibration) -> None:
        self.calibration = calibration
        self.rows = 0
        self.tp = self.fp = self.fn = self.tn = 0.0
        self.positives = np.zeros(SCORE_BINS)
        self.negatives = np.zeros(SCORE_BINS)

    def update(self, scores: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        scores = scores[~np.isnan(scores)]
        if not len(scores):
            return
        p = self.calibration.apply(scores)
        predicted = scores > THRESHOLD
        self.rows += len(scores)
        self.tp += float(p[predicted].sum())
        self.fp += float((1 - p[predicted]).sum())
        self.fn += float(p[~predicted].sum())
        self.tn += float((1 - p[~predicted]).sum())
        index = np.clip((scores * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)
        self.positives += np.bincount(index, weights=p, minlength=SCORE_BINS)
        self.negatives += np.bincount(index, weights=1 - p, minlength=SCORE_BINS)

    def estimate(self) -> dict[str, float | None]:
        """The estimated metrics of what was fed (empty when nothing was)."""
        if not self.rows:
            return {}
        precision = _ratio(self.tp, self.tp + self.fp)
        recall = _ratio(self.tp, self.tp + self.fn)
        expected_pos, expected_neg = self.positives.sum(), self.negatives.sum()
        auc: float | None = None
        if expected_pos > 0 and expected_neg > 0:
            below = np.cumsum(self.negatives) - self.negatives  # expected negatives in lower bins
            auc = float(np.sum(self.positives * (below + self.negatives / 2)) / (expected_pos * expected_neg))
        return {
            "accuracy": (self.tp + self.tn) / self.rows,
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "roc_auc": auc,
        }
