"""The promotion gate: move an alias to a version only if it passes the conditions.

``require={"auc": ">= 0.9", "latency_ms": "< 20"}`` states a threshold per metric. A value may be
a list of conditions (``{"auc": [">= 0.9", ">= baseline - 0.01"]}``) and a key may name where the
metric is read:

- ``"auc"``: the overall metric of the version's latest stored evaluation
  (:mod:`fti.registry.evaluation`), else the metric given at registration;
- ``"auc@slice"``: every slice of the evaluation with at least its ``min_rows`` rows;
  ``"auc@category"`` those of one slicing, ``"auc@category=travel"`` one slice;
- ``"demographic_parity_difference"`` (and the other Fairlearn disparities): every sensitive
  feature of the evaluation; ``"...@age_group"`` one of them.

A figure the evaluation could not define (AUC of a slice holding one class, a disparity with fewer
than two groups of ``min_rows`` rows) is not gated, like a slice with fewer than ``min_rows`` rows.

``">= baseline - 0.01"`` compares with the baseline's figure *on the same rows* (the evaluation's
``baseline=``; an alias that pointed nowhere leaves nothing to beat). With
``compare_to="production"`` the candidate's registered metrics must also be no worse than those of
the version that alias points to (the operator says what "better" means: ``>``/``>=`` higher,
``<``/``<=`` lower; ``==``/``!=`` are not compared). A refusal raises
:class:`PromotionRejectedError` listing every failed condition, each failing slice and group, and
by how much.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fti.errors import ConflictError, ValidationError
from fti.registry.evaluation.metrics import FAIRNESS_METRICS, KNOWN_METRICS, METRICS

if TYPE_CHECKING:
    from fti.registry.evaluation.results import Evaluation

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CONDITION = re.compile(rf"^\s*(>=|<=|==|!=|>|<)\s*(?:({_NUMBER})|baseline(?:\s*([-+])\s*({_NUMBER}))?)\s*$")


class PromotionRejectedError(ConflictError):
    """``promote`` refused: a required metric is missing, fails its threshold, or is worse."""

    code = "promotion_rejected"

    def __init__(self, message: str, failures: list[str]) -> None:
        super().__init__(message, details={"failed_conditions": failures})
        self.failures = failures


@dataclass(frozen=True)
class Condition:
    """``metric[@scope] op threshold``, e.g. ``auc >= 0.9``, ``auc@slice >= 0.85`` or, with
    ``relative``, ``auc >= baseline - 0.01`` (``threshold`` is then the offset)."""

    metric: str
    op: str
    threshold: float
    scope: str | None = None
    relative: bool = False

    def target(self, reference: float = 0.0) -> float:
        """The bound a value is held to (``reference`` is the baseline's value when relative)."""
        return reference + self.threshold if self.relative else self.threshold

    def holds(self, value: float, reference: float = 0.0) -> bool:
        return _OPS[self.op](value, self.target(reference))

    @property
    def higher_is_better(self) -> bool | None:
        """True for ``>``/``>=``, False for ``<``/``<=``, None when there is no direction."""
        return True if self.op in (">", ">=") else False if self.op in ("<", "<=") else None

    @property
    def key(self) -> str:
        return self.metric + ("" if self.scope is None else f"@{self.scope}")

    def __str__(self) -> str:
        if not self.relative:
            return f"{self.key} {self.op} {self.threshold:g}"
        offset = (
            "" if self.threshold == 0 else f" {'-' if self.threshold < 0 else '+'} {abs(self.threshold):g}"
        )
        return f"{self.key} {self.op} baseline{offset}"


def parse_conditions(require: object) -> list[Condition]:
    """``{"auc": ">= 0.9", "auc@slice": [">= 0.85", ">= baseline - 0.02"]}`` -> conditions.

    Raises:
        ValidationError: a malformed condition, or an unknown metric in a condition that only an
            evaluation can judge (``@`` scopes, ``baseline``, fairness metrics).
    """
    if require is None:
        return []
    if not isinstance(require, Mapping):
        raise ValidationError(
            f'require must be a dict like {{"auc": ">= 0.9"}}, got {type(require).__name__}'
        )
    conditions = []
    for key, value in require.items():
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, Sequence) or isinstance(texts, str) or not texts:
            texts = [value]
        for text in texts:
            conditions.append(_condition(key, text))
    return conditions


def _condition(key: object, text: object) -> Condition:
    match = _CONDITION.match(text) if isinstance(text, str) else None
    metric, at, scope = key.partition("@") if isinstance(key, str) else ("", "", "")
    if not metric or (at and not scope) or match is None:
        raise ValidationError(
            f"invalid promotion condition {key!r}: {text!r}; write an operator (>=, >, <=, <, ==, !=) and a "
            'number or "baseline" (+/- a number), e.g. {"auc": ">= 0.9"}, {"auc@slice": ">= baseline - 0.02"}'
        )
    op, number, sign, offset = match.groups()
    relative = number is None
    threshold = float(number) if number is not None else float(offset or 0) * (-1 if sign == "-" else 1)
    if not math.isfinite(threshold):
        raise ValidationError(f"promotion threshold for {key!r} must be finite, got {text!r}")
    condition = Condition(metric, op, threshold, scope or None, relative)
    fair = metric in FAIRNESS_METRICS
    if (condition.scope or relative or fair) and metric not in KNOWN_METRICS:
        raise ValidationError(
            f"unknown metric {metric!r} in promotion condition {key!r}: {text!r}; evaluations compute "
            f"{sorted(KNOWN_METRICS)}"
        )
    if fair and condition.scope is not None and (condition.scope == "slice" or "=" in condition.scope):
        raise ValidationError(
            f"{metric} is measured per sensitive feature: write {metric!r} (every one) or "
            f"'{metric}@<feature>', not {key!r}"
        )
    return condition


def failures(
    candidate: str,
    metrics: Mapping[str, float],
    conditions: list[Condition],
    *,
    evaluation: Evaluation | None = None,
    incumbent: str | None = None,
    incumbent_metrics: Mapping[str, float] | None = None,
) -> list[str]:
    """Every failed condition as a sentence (empty list = the gate passes).

    Args:
        candidate: ``name:version`` of the candidate, for messages.
        metrics: The candidate's registered metrics.
        conditions: Parsed conditions.
        evaluation: The candidate's evaluation to judge (None: it has none).
        incumbent: ``name:version`` of the current alias holder when comparing, else None.
        incumbent_metrics: Its registered metrics.
    """
    found: list[str] = []
    for cond in conditions:
        if cond.metric in FAIRNESS_METRICS:
            found += _judge_fairness(cond, candidate, evaluation)
        elif cond.scope is not None:
            found += _judge_slices(cond, candidate, evaluation)
        else:
            found += _judge_overall(cond, candidate, metrics, evaluation)
        if incumbent is None or incumbent_metrics is None or cond.higher_is_better is None:
            continue
        if cond.scope is not None or cond.relative or cond.metric in FAIRNESS_METRICS:
            continue  # compare_to compares registered metrics
        value, current = metrics.get(cond.metric), incumbent_metrics.get(cond.metric)
        if value is None or current is None:
            continue  # missing: reported above, or nothing to compare against
        worse = value < current if cond.higher_is_better else value > current
        if worse:
            direction = "higher" if cond.higher_is_better else "lower"
            found.append(
                f"{cond.metric}: {candidate} has {value:g}, worse than {current:g} of {incumbent} "
                f"({direction} is better)"
            )
    return found


def _short(cond: Condition, value: float, reference: float = 0.0) -> str:
    """How far ``value`` misses the condition."""
    gap = abs(value - cond.target(reference))
    if cond.higher_is_better is None:
        return ""
    return f", {'short' if cond.higher_is_better else 'over'} by {gap:.4g}"


def _against(cond: Condition, evaluation: Evaluation | None, candidate: str) -> str | None:
    """Why ``cond`` cannot be judged on ``evaluation`` at all, or None."""
    if evaluation is None:
        return f"{cond}: {candidate} has no stored evaluation; evaluate it first (mr.evaluate({candidate!r}, ...))"
    if cond.relative and evaluation.compare is None:
        return (
            f"{cond}: evaluation {evaluation.number} of {candidate} has no baseline; evaluate with "
            "baseline='<model>@<alias>'"
        )
    return None


def _judge_overall(
    cond: Condition, candidate: str, registered: Mapping[str, float], evaluation: Evaluation | None
) -> list[str]:
    problem = _against(cond, evaluation, candidate) if cond.relative else None
    if problem is not None:
        return [problem]
    if evaluation is not None and cond.metric in evaluation.metrics:
        value, where = evaluation.metrics[cond.metric], f" (evaluation {evaluation.number})"
    elif cond.metric in registered and not cond.relative:
        value, where = registered[cond.metric], ""
    else:
        known = f"its metrics: {sorted(registered) or 'none'}"
        if evaluation is not None:
            known = f"evaluation {evaluation.number}: {sorted(evaluation.metrics)}; registered: {sorted(registered)}"
        return [f"{cond}: {candidate} has no metric {cond.metric!r} ({known})"]
    reference = 0.0
    if cond.relative:
        assert evaluation is not None and evaluation.compare is not None
        if evaluation.compare.model is None:
            return []  # the baseline alias pointed nowhere: nothing to beat
        base = evaluation.compare.metrics.get(cond.metric)
        if base is None:
            return [f"{cond}: baseline {evaluation.compare.model} has no {cond.metric} on the same rows"]
        reference = base
    if cond.holds(value, reference):
        return []
    base_text = (
        f" vs {reference:.4g} of baseline {evaluation.compare.model}"
        if cond.relative and evaluation and evaluation.compare
        else ""
    )
    return [
        f"{cond}: {candidate} has {cond.metric} = {value:.4g}{where}{base_text}{_short(cond, value, reference)}"
    ]


def _judge_slices(cond: Condition, candidate: str, evaluation: Evaluation | None) -> list[str]:
    problem = _against(cond, evaluation, candidate)
    if problem is not None:
        return [problem]
    assert evaluation is not None
    if cond.metric not in METRICS[evaluation.task]:
        return [
            f"{cond}: a {evaluation.task} model has no metric {cond.metric!r} "
            f"(evaluation {evaluation.number} computes {list(METRICS[evaluation.task])})"
        ]
    scope = cond.scope or ""
    feature, _, value = scope.partition("=")
    if scope == "slice":
        chosen = [s for s in evaluation.by_slice if s.gated]
        missing = not evaluation.by_slice
    elif value:
        chosen = [s for s in evaluation.by_slice if s.feature == feature and s.value == value]
        missing = not chosen
    else:
        chosen = [s for s in evaluation.by_slice if s.feature == feature and s.gated]
        missing = not any(s.feature == feature for s in evaluation.by_slice)
    if missing:
        sliced = sorted({s.feature for s in evaluation.by_slice})
        what = "slices" if scope == "slice" else f"slice {scope!r}"
        return [
            f"{cond}: evaluation {evaluation.number} of {candidate} has no {what} (sliced by: "
            f"{sliced or 'nothing'}); evaluate with slices=[...]"
        ]
    compare = evaluation.compare
    if cond.relative and compare is not None and compare.model is None:
        return []  # nothing to beat
    found = []
    for s in chosen:
        figure = s.metrics.get(cond.metric)
        reference = (s.baseline or {}).get(cond.metric) if cond.relative else 0.0
        if figure is None or reference is None:
            continue  # undefined on this slice (e.g. AUC of a slice holding one class): not gated
        if not cond.holds(figure, reference):
            base_text = (
                f" vs {reference:.4g} of baseline {compare.model}" if cond.relative and compare else ""
            )
            found.append(
                f"{cond}: {candidate} has {cond.metric} = {figure:.4g} on {s.name} ({s.rows:,} rows){base_text}"
                f"{_short(cond, figure, reference)}"
            )
    return found


def _judge_fairness(cond: Condition, candidate: str, evaluation: Evaluation | None) -> list[str]:
    problem = _against(cond, evaluation, candidate)
    if problem is not None:
        return [problem]
    assert evaluation is not None
    features = evaluation.fairness
    if cond.scope is not None:
        features = {k: v for k, v in features.items() if k == cond.scope}
    if not features:
        what = "sensitive features" if cond.scope is None else f"sensitive feature {cond.scope!r}"
        return [
            f"{cond}: evaluation {evaluation.number} of {candidate} has no {what} (fairness by: "
            f"{sorted(evaluation.fairness) or 'nothing'}); evaluate with sensitive=[...]"
        ]
    compare = evaluation.compare
    if cond.relative and compare is not None and compare.model is None:
        return []
    found = []
    for feature, result in features.items():
        figure = result.metrics.get(cond.metric)
        if figure is None:
            continue  # undefined (fewer than two groups with min_rows rows): not gated, like a small slice
        reference = (result.baseline or {}).get(cond.metric) if cond.relative else 0.0
        if reference is None:
            continue
        if not cond.holds(figure, reference):
            rates = ", ".join(
                f"{g.value} {g.metrics['selection_rate']:.4g}"
                for g in result.groups
                if g.eligible and "selection_rate" in g.metrics
            )
            base_text = (
                f" vs {reference:.4g} of baseline {compare.model}" if cond.relative and compare else ""
            )
            found.append(
                f"{cond}: {candidate} has {cond.metric} = {figure:.4g} by {feature}{base_text} (selection "
                f"rates: {rates}){_short(cond, figure, reference)}"
            )
    return found


def reason(conditions: list[Condition], compare_to: str | None, evaluation: int | None = None) -> str:
    """The alias-history note of a promotion."""
    text = "promote"
    if conditions:
        text += " (" + ", ".join(str(c) for c in conditions) + ")"
    if evaluation is not None:
        text += f" on evaluation {evaluation}"
    if compare_to:
        text += f" compared to {compare_to!r}"
    return text
