"""Model evaluation on data: metrics overall and per slice, fairness, a baseline on the same rows.

``project.model_registry.evaluate("fraud:4", slices=[...], sensitive=[...], baseline=...)`` reads
the model's own feature view rows (the test split of its training dataset version, or a time
range), scores them with the scorer batch inference uses, computes scikit-learn's metrics overall
and per slice and Fairlearn's fairness metrics per sensitive feature, scores the baseline on the
same rows, and stores the result as a numbered evaluation of the model version.
``mr.promote(..., require={"auc@slice": ">= 0.85", ...})`` then judges the latest evaluation
(see :mod:`fti.registry.promotion`).

One module per concept: ``slicing`` (slices, :func:`bins`), ``data`` (rows, model inputs,
scoring), ``metrics`` (scikit-learn and Fairlearn), ``results`` (:class:`Evaluation` and its
report), ``runner`` (:func:`evaluate`). Importing this package loads no data library.
"""

from __future__ import annotations

from fti.registry.evaluation.metrics import FAIRNESS_METRICS, KNOWN_METRICS, METRICS
from fti.registry.evaluation.results import Comparison, Evaluation, FairnessResult, GroupResult, SliceResult
from fti.registry.evaluation.slicing import Bins, bins

__all__ = [
    "FAIRNESS_METRICS",
    "KNOWN_METRICS",
    "METRICS",
    "Bins",
    "Comparison",
    "Evaluation",
    "FairnessResult",
    "GroupResult",
    "SliceResult",
    "bins",
]
