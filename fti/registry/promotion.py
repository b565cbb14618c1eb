"""The promotion gate: move an alias to a version only if its metrics pass the conditions.

``require={"auc": ">= 0.9", "latency_ms": "< 20"}`` states a threshold per metric; with
``compare_to="production"`` the candidate must also be no worse than the version that alias
currently points to on every gated metric (the operator's direction says what "better" means:
``>``/``>=`` higher, ``<``/``<=`` lower; ``==``/``!=`` conditions are not compared). A refusal
raises :class:`PromotionRejectedError` listing every failed condition.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fti.errors import ConflictError, ValidationError

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


class PromotionRejectedError(ConflictError):
    """``promote`` refused: a required metric is missing, fails its threshold, or is worse."""

    code = "promotion_rejected"

    def __init__(self, message: str, failures: list[str]) -> None:
        super().__init__(message, details={"failed_conditions": failures})
        self.failures = failures


@dataclass(frozen=True)
class Condition:
    """``metric op threshold``, e.g. ``auc >= 0.9``."""

    metric: str
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    @property
    def higher_is_better(self) -> bool | None:
        """True for ``>``/``>=``, False for ``<``/``<=``, None when there is no direction."""
        return True if self.op in (">", ">=") else False if self.op in ("<", "<=") else None

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


def parse_conditions(require: object) -> list[Condition]:
    """``{"auc": ">= 0.9"}`` -> conditions; ``ValidationError`` naming a malformed one."""
    if require is None:
        return []
    if not isinstance(require, Mapping):
        raise ValidationError(
            f'require must be a dict like {{"auc": ">= 0.9"}}, got {type(require).__name__}'
        )
    conditions = []
    for metric, text in require.items():
        match = _CONDITION.match(text) if isinstance(text, str) else None
        if not isinstance(metric, str) or not metric or match is None:
            raise ValidationError(
                f"invalid promotion condition {metric!r}: {text!r}; write an operator (>=, >, <=, <, ==, !=) "
                'and a number, e.g. {"auc": ">= 0.9"}'
            )
        threshold = float(match.group(2))
        if not math.isfinite(threshold):
            raise ValidationError(f"promotion threshold for {metric!r} must be finite, got {text!r}")
        conditions.append(Condition(metric, match.group(1), threshold))
    return conditions


def evaluate(
    candidate: str,
    metrics: Mapping[str, float],
    conditions: list[Condition],
    *,
    incumbent: str | None = None,
    incumbent_metrics: Mapping[str, float] | None = None,
) -> list[str]:
    """Every failed condition as a sentence (empty list = the gate passes).

    Args:
        candidate: ``name:version`` of the candidate, for messages.
        metrics: The candidate's metrics.
        conditions: Parsed thresholds.
        incumbent: ``name:version`` of the current alias holder when comparing, else None.
        incumbent_metrics: Its metrics.
    """
    failures = []
    for cond in conditions:
        value = metrics.get(cond.metric)
        if value is None:
            failures.append(
                f"{cond}: {candidate} has no metric {cond.metric!r} (its metrics: {sorted(metrics) or 'none'})"
            )
            continue
        if not cond.holds(value):
            failures.append(f"{cond}: {candidate} has {cond.metric} = {value:g}")
        if incumbent is None or incumbent_metrics is None or cond.higher_is_better is None:
            continue
        current = incumbent_metrics.get(cond.metric)
        if current is None:
            continue  # nothing to compare against
        worse = value < current if cond.higher_is_better else value > current
        if worse:
            direction = "higher" if cond.higher_is_better else "lower"
            failures.append(
                f"{cond.metric}: {candidate} has {value:g}, worse than {current:g} of {incumbent} "
                f"({direction} is better)"
            )
    return failures


def reason(conditions: list[Condition], compare_to: str | None) -> str:
    """The alias-history note of a promotion."""
    text = "promote"
    if conditions:
        text += " (" + ", ".join(str(c) for c in conditions) + ")"
    if compare_to:
        text += f" compared to {compare_to!r}"
    return text
