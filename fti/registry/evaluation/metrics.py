"""The figures of an evaluation: scikit-learn's metrics per task, Fairlearn's fairness metrics.

A metric that scikit-learn cannot define on some rows (AUC of a slice holding one class, R² of a
single row, precision without a predicted positive) is left out rather than reported as 0 or NaN:
it is shown as "n/a" and never gated. Classification labels are matched as text, the form the
registry records a classifier's classes in (``mv.signature.classes``), then coded as the index of
their class (scikit-learn is much faster on integers than on text; the figures are the same).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    import numpy as np

TASKS = ("binary", "multiclass", "regression")
BINARY_METRICS = (
    "auc",
    "average_precision",
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "log_loss",
    "brier",
)
MULTICLASS_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_weighted",
    "auc",
    "log_loss",
)
REGRESSION_METRICS = ("rmse", "mae", "mse", "r2", "median_absolute_error", "max_error", "explained_variance")
METRICS = {"binary": BINARY_METRICS, "multiclass": MULTICLASS_METRICS, "regression": REGRESSION_METRICS}
FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
)
"""Fairlearn's disparities between the groups of a sensitive feature (binary classifiers)."""
GROUP_METRICS = (
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "false_negative_rate",
    "error_rate",
)
"""Per group of a sensitive feature (Fairlearn's ``MetricFrame``)."""
KNOWN_METRICS = frozenset([*BINARY_METRICS, *MULTICLASS_METRICS, *REGRESSION_METRICS, *FAIRNESS_METRICS])
HEADLINE = {
    "binary": ("auc", "average_precision", "precision", "recall", "f1"),
    "multiclass": ("accuracy", "f1_macro", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
"""The metrics a report's slice tables show (every metric is stored)."""


POSITIVE = 1
"""The code of a binary classifier's positive class (its second probability column)."""


@dataclass(frozen=True)
class Task:
    """What kind of model is evaluated; for classifiers, their classes in probability-column order
    (labels and predictions are coded as indices into them, -1 for a label outside them)."""

    kind: str
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outputs:
    """One model's predictions on the evaluated rows (class codes for classifiers)."""

    predicted: np.ndarray
    proba: np.ndarray | None

    def take(self, rows: np.ndarray) -> Outputs:
        return Outputs(self.predicted[rows], None if self.proba is None else self.proba[rows])


def as_labels(values: Any) -> np.ndarray:
    """Labels as text: integral floats as integers first, so ``1.0`` and ``1`` are one class."""
    import numpy as np

    array = np.asarray(values)
    if array.dtype.kind == "f" and np.isfinite(array).all() and (array == np.round(array)).all():
        array = array.astype(np.int64)
    return array.astype(str)


def prepare(
    y: Any, outputs: dict[str, Any], classes: Sequence[str] | None, model: str
) -> tuple[Task, np.ndarray, Outputs]:
    """The task, the labels and the predictions of ``model`` in the form the metrics take.

    A model with ``predict_proba`` is a classifier; one without it is a regressor when its labels
    or predictions hold non-integral numbers, else a classifier judged on its labels alone.

    Raises:
        ValidationError: several outputs per row, or probabilities that match no class list.
    """
    import numpy as np

    predicted = np.asarray(outputs["predict"])
    if predicted.ndim == 2 and predicted.shape[1] == 1:
        predicted = predicted.ravel()
    if predicted.ndim != 1:
        raise ValidationError(
            f"{model} predicts {predicted.shape[1]} values per row; evaluation supports models with one output"
        )
    proba = outputs.get("predict_proba")
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim == 1:  # the positive class's probability alone
            proba = np.column_stack([1.0 - proba, proba])
    truth = np.asarray(y)
    if proba is None and (_continuous(truth) or _continuous(predicted)):
        return Task("regression"), truth.astype(np.float64), Outputs(predicted.astype(np.float64), None)
    truth_labels, predicted_labels = as_labels(truth), as_labels(predicted)
    known = tuple(classes or ())
    if not known or (proba is not None and len(known) != proba.shape[1]):
        known = tuple(sorted(set(truth_labels.tolist()) | set(predicted_labels.tolist())))
        if proba is not None and len(known) != proba.shape[1]:
            raise ValidationError(
                f"{model} gives {proba.shape[1]} class probabilities but its classes are not recorded and "
                f"the labels hold {len(known)} classes; register the model with its classes (classes_)"
            )
    if len(known) < 2:
        raise ValidationError(f"evaluating {model} needs at least two classes, the rows hold {list(known)}")
    kind = "binary" if len(known) == 2 else "multiclass"
    return Task(kind, known), _codes(truth_labels, known), Outputs(_codes(predicted_labels, known), proba)


def _codes(labels: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    import numpy as np

    lookup = {c: i for i, c in enumerate(classes)}
    distinct, inverse = np.unique(labels, return_inverse=True)
    return np.array([lookup.get(str(v), -1) for v in distinct], dtype=np.int64)[inverse.reshape(-1)]


def _continuous(values: np.ndarray) -> bool:
    import numpy as np

    return values.dtype.kind == "f" and not (np.isfinite(values).all() and (values == np.round(values)).all())


def compute(task: Task, y: np.ndarray, out: Outputs) -> dict[str, float]:
    """Every metric of ``task`` that is defined on these rows, by name (see :data:`METRICS`)."""
    import numpy as np
    from sklearn import metrics as m

    figures: dict[str, Callable[[], Any]]
    pred, proba = out.predicted, out.proba
    if task.kind == "regression":
        figures = {
            "rmse": lambda: m.root_mean_squared_error(y, pred),
            "mae": lambda: m.mean_absolute_error(y, pred),
            "mse": lambda: m.mean_squared_error(y, pred),
            "r2": lambda: m.r2_score(y, pred),
            "median_absolute_error": lambda: m.median_absolute_error(y, pred),
            "max_error": lambda: m.max_error(y, pred),
            "explained_variance": lambda: m.explained_variance_score(y, pred),
        }
    elif task.kind == "binary":
        truth, hit = y == POSITIVE, pred == POSITIVE
        figures = {
            "accuracy": lambda: m.accuracy_score(y, pred),
            "balanced_accuracy": lambda: m.balanced_accuracy_score(y, pred),
            "precision": lambda: m.precision_score(truth, hit, zero_division=np.nan),
            "recall": lambda: m.recall_score(truth, hit, zero_division=np.nan),
            "f1": lambda: m.f1_score(truth, hit, zero_division=np.nan),
        }
        if proba is not None:
            figures |= {
                "auc": lambda: m.roc_auc_score(truth, proba[:, 1]),
                "average_precision": lambda: m.average_precision_score(truth, proba[:, 1]),
                "log_loss": lambda: m.log_loss(y, proba, labels=[0, 1]),
                "brier": lambda: m.brier_score_loss(truth, proba[:, 1]),
            }
    else:
        figures = {
            "accuracy": lambda: m.accuracy_score(y, pred),
            "balanced_accuracy": lambda: m.balanced_accuracy_score(y, pred),
            "precision_macro": lambda: m.precision_score(y, pred, average="macro", zero_division=np.nan),
            "recall_macro": lambda: m.recall_score(y, pred, average="macro", zero_division=np.nan),
            "f1_macro": lambda: m.f1_score(y, pred, average="macro", zero_division=np.nan),
            "f1_weighted": lambda: m.f1_score(y, pred, average="weighted", zero_division=np.nan),
        }
        if proba is not None:
            labels = list(range(len(task.classes)))
            figures |= {
                "auc": lambda: m.roc_auc_score(y, proba, multi_class="ovr", labels=labels),
                "log_loss": lambda: m.log_loss(y, proba, labels=labels),
            }
    order = METRICS[task.kind]
    values = {name: defined(figures[name]) for name in order if name in figures}
    return {name: value for name, value in values.items() if value is not None}


def fairness(
    task: Task, y: np.ndarray, out: Outputs, groups: np.ndarray, eligible: Sequence[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Fairlearn's disparities over the ``eligible`` groups, and every group's rates.

    Returns:
        ``{metric: value}`` of :data:`FAIRNESS_METRICS` (empty with fewer than two eligible
        groups), and ``{group: {metric: value}}`` of :data:`GROUP_METRICS` for every group (a
        group without positive labels has no true/false negative rate, one without negatives
        no false positive rate).

    Raises:
        ValidationError: the model is not a binary classifier.
        BackendError: Fairlearn is not installed.
    """
    import numpy as np

    fm = _fairlearn()
    from sklearn.metrics import zero_one_loss

    # Fairlearn's metrics depend only on the counts of (group, label, prediction): it is given one
    # row per combination weighted by its count, which gives its results on every row (exactly;
    # the weights are integers) at a cost that does not grow with the rows.
    truth = (y == POSITIVE).astype(np.int64)
    hit = (out.predicted == POSITIVE).astype(np.int64)
    names, index = np.unique(groups, return_inverse=True)
    cells, counts = np.unique(np.column_stack([index, truth, hit]), axis=0, return_counts=True)
    by, cell_truth, cell_hit = names[cells[:, 0]], cells[:, 1], cells[:, 2]
    weight = counts.astype(np.float64)
    summary: dict[str, float] = {}
    chosen = np.isin(by, list(eligible))
    if len(eligible) >= 2:
        args = (cell_truth[chosen], cell_hit[chosen])
        kwargs = {"sensitive_features": by[chosen], "sample_weight": weight[chosen]}
        disparities: dict[str, Callable[[], Any]] = {
            "demographic_parity_difference": lambda: fm.demographic_parity_difference(*args, **kwargs),
            "demographic_parity_ratio": lambda: fm.demographic_parity_ratio(*args, **kwargs),
            "equalized_odds_difference": lambda: fm.equalized_odds_difference(*args, **kwargs),
            "equalized_odds_ratio": lambda: fm.equalized_odds_ratio(*args, **kwargs),
            "equal_opportunity_difference": lambda: fm.equal_opportunity_difference(*args, **kwargs),
        }
        for name, figure in disparities.items():
            value = defined(figure)
            if value is not None:
                summary[name] = value
    frame = fm.MetricFrame(
        metrics={
            "selection_rate": fm.selection_rate,
            "true_positive_rate": fm.true_positive_rate,
            "false_positive_rate": fm.false_positive_rate,
            "false_negative_rate": fm.false_negative_rate,
            "error_rate": zero_one_loss,
        },
        y_true=cell_truth,
        y_pred=cell_hit,
        sensitive_features=by,
        sample_params={name: {"sample_weight": weight} for name in GROUP_METRICS},
    )
    rates: dict[str, dict[str, float]] = {}
    for group, row in frame.by_group.iterrows():
        in_group = groups == group
        positives = int(truth[in_group].sum())
        undefined = set()
        if positives == 0:
            undefined |= {"true_positive_rate", "false_negative_rate"}
        if positives == int(in_group.sum()):
            undefined.add("false_positive_rate")
        rates[str(group)] = {
            name: float(row[name])
            for name in GROUP_METRICS
            if name not in undefined and math.isfinite(float(row[name]))
        }
    return summary, rates


def defined(figure: Callable[[], Any]) -> float | None:
    """The value of a metric, or None where scikit-learn says it is ill-defined (a warning, an
    error on degenerate input, or a non-finite result)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(figure())
        except (ValueError, ZeroDivisionError):
            return None
    if any(issubclass(w.category, UserWarning | RuntimeWarning) for w in caught):
        return None  # UndefinedMetricWarning is a UserWarning
    return value if math.isfinite(value) else None


def _fairlearn() -> Any:
    from fti.errors import BackendError

    try:
        from fairlearn import metrics
    except ImportError as exc:
        raise BackendError(
            f"fairness metrics need Fairlearn ({exc}); install it with `pip install 'fti[evaluation]'`"
        ) from exc
    return metrics
