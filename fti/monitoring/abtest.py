"""A/B readout of a deployment's variants: server figures and realized metrics with a test.

``project.monitoring.compare("fraud")`` (CLI ``fti deployments compare fraud``) gives, per
variant (``champion``, each traffic-split variant, and the ``shadow``):

- from the servers (every worker's counters in the catalog, as the rollout gates read them):
  requests, 5xx errors, error rate, p99 latency;
- from the inference log joined with the labels logged for it (``log_labels``): the labelled
  rows and a realized metric — accuracy (the prediction equals the label) for a classifier,
  mean absolute error for a regressor — with a 95 % confidence interval (Wilson for accuracy,
  the normal approximation for the MAE), and against the champion a two-sided test (a
  two-proportion z-test for accuracy, a Welch z-test for the MAE) with its p-value and whether
  the difference is significant at ``alpha``.

The tests treat the variants as independent samples, which traffic splits are (each request goes
to one variant); a shadow answers the same requests as the champion, so for it the test is
conservative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError
from fti.monitoring.data import MonitoredData
from fti.monitoring.labels import join_window

if TYPE_CHECKING:
    from fti.project import Project

_Z95 = 1.959963984540054


@dataclass(frozen=True)
class VariantReadout:
    """One variant's figures (None where there is nothing to compute)."""

    variant: str
    requests: int
    errors: int
    error_rate: float | None
    p99_ms: float | None
    labelled: int
    metric: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    """Against the champion (None for the champion itself)."""
    significant: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in self.__dict__.items()}


def compare(
    project: Project, deployment: str, *, prediction: str = "predict", start: datetime | None = None,
    end: datetime | None = None, alpha: float = 0.05,
) -> list[VariantReadout]:  # fmt: skip
    """The readout of every variant of ``deployment`` (champion first). See the module docstring.

    Raises:
        NotFoundError: no such deployment. ValidationError: ``alpha`` not in (0, 1), or a
            ``prediction`` column the inference log does not have.
    """
    from fti.serving.rollouts import records
    from fti.serving.rollouts.gates import figures

    project.serving.get(deployment)  # NotFoundError names the deployments
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValidationError(f"alpha must be a number in (0, 1), got {alpha!r}")
    server = figures(records.stats(project.backends.catalog, project.id, deployment), {})
    realized = _realized(project, deployment, prediction, start, end)
    variants = sorted(set(server) | set(realized), key=lambda v: (v != "champion", v))
    base = realized.get("champion")
    out = []
    for variant in variants:
        s = server.get(variant, {})
        r = realized.get(variant)
        p = None if r is None or base is None or variant == "champion" else _test(base, r)
        out.append(
            VariantReadout(
                variant, int(s.get("requests", 0)), int(s.get("errors", 0)), s.get("error_rate"), s.get("p99_ms"),
                0 if r is None else r["n"], None if r is None else r["metric"], None if r is None else r["value"],
                None if r is None else r["low"], None if r is None else r["high"], p,
                None if p is None else p < alpha,
            )
        )  # fmt: skip
    return out


def _realized(
    project: Project, deployment: str, prediction: str, start: datetime | None, end: datetime | None
) -> dict[str, dict[str, Any]]:
    import numpy as np

    data = MonitoredData("deployment", deployment)
    try:
        schema = data.schema(project)
    except NotFoundError:
        return {}  # nothing logged yet
    if prediction not in schema:
        raise ValidationError(
            f"the inference log of {deployment!r} has no column {prediction!r}; pass prediction= one of "
            f"{sorted(c for c in schema if c not in ('request_id', 'row', 'timestamp'))[:20]}"
        )
    joined = join_window(project, data, ["variant", prediction], start, end, deployment)  # type: ignore[arg-type]
    if joined is None or joined.num_rows == 0:
        return {}
    variants = [v or "champion" for v in joined.column("variant").to_pylist()]
    predicted = joined.column(prediction).to_numpy(zero_copy_only=False)
    labels = joined.column("__label").to_numpy(zero_copy_only=False)
    regression = predicted.dtype.kind == "f" and labels.dtype.kind == "f"
    out: dict[str, dict[str, Any]] = {}
    for variant in sorted(set(variants)):
        mask = np.array([v == variant for v in variants])
        if regression:
            errors = np.abs(predicted[mask].astype(float) - labels[mask].astype(float))
            n, mean = len(errors), float(errors.mean())
            sd = float(errors.std(ddof=1)) if n > 1 else 0.0
            half = _Z95 * sd / math.sqrt(n)
            out[variant] = {
                "metric": "mae",
                "n": n,
                "value": mean,
                "low": mean - half,
                "high": mean + half,
                "sd": sd,
            }
        else:
            mine, truth = predicted[mask], labels[mask]
            numeric = mine.dtype.kind in "iufb" and truth.dtype.kind in "iufb"
            hits = (
                mine.astype(float) == truth.astype(float)
                if numeric
                else mine.astype(str) == truth.astype(str)
            )
            n, k = len(hits), int(hits.sum())
            low, high = _wilson(k, n)
            out[variant] = {"metric": "accuracy", "n": n, "value": k / n, "low": low, "high": high, "k": k}
    return out


def _wilson(k: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion k/n."""
    p = k / n
    denominator = 1 + _Z95**2 / n
    centre = (p + _Z95**2 / (2 * n)) / denominator
    half = _Z95 * math.sqrt(p * (1 - p) / n + _Z95**2 / (4 * n * n)) / denominator
    # exact at the ends (rounding would put 1.0 just outside an all-correct interval)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def _test(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """The two-sided p-value of ``b`` against ``a`` (None when it cannot be computed)."""
    if a["n"] < 2 or b["n"] < 2:
        return None
    if a["metric"] == "accuracy":
        pooled = (a["k"] + b["k"]) / (a["n"] + b["n"])
        se = math.sqrt(pooled * (1 - pooled) * (1 / a["n"] + 1 / b["n"]))
    else:
        se = math.sqrt(a["sd"] ** 2 / a["n"] + b["sd"] ** 2 / b["n"])
    diff = b["value"] - a["value"]
    if se == 0:
        return 1.0 if diff == 0 else 0.0
    return math.erfc(abs(diff / se) / math.sqrt(2))


def realized_figures(
    project: Project, deployment: str, start: datetime, end: datetime
) -> dict[str, dict[str, Any]]:
    """``{variant: {"accuracy" (and "auc") or "mae": value, "labelled": rows}}`` of the predictions
    logged in ``[start, end)`` that have labels: what rollout gates on realized metrics judge (see
    ``fti.serving.rollouts.gates.Realized``); empty while nothing is labelled."""
    try:
        found = _realized(project, deployment, "predict", start, end)
    except ValidationError:
        return {}  # a log without a "predict" output: nothing to judge
    out = {v: {r["metric"]: r["value"], "labelled": r["n"]} for v, r in found.items()}
    for variant, auc in _auc(project, deployment, start, end).items():
        out.setdefault(variant, {}).update(auc=auc)
    return out


def _auc(project: Project, deployment: str, start: datetime, end: datetime) -> dict[str, float]:
    """ROC AUC per variant from the logged probability of the positive class (``predict_proba_1``,
    the second column of a binary classifier's ``predict_proba``) against the labels; a variant
    whose labelled rows hold a single class has no AUC."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    data = MonitoredData("deployment", deployment)
    column = "predict_proba_1"
    try:
        if column not in data.schema(project) or "predict_proba_2" in data.schema(project):
            return {}  # not a binary classifier's probabilities
    except NotFoundError:
        return {}
    joined = join_window(project, data, ["variant", column], start, end, deployment)  # type: ignore[arg-type]
    if joined is None or joined.num_rows == 0:
        return {}
    variants = np.array([v or "champion" for v in joined.column("variant").to_pylist()])
    scores = joined.column(column).to_numpy(zero_copy_only=False).astype(float)
    labels = joined.column("__label").to_numpy(zero_copy_only=False)
    out: dict[str, float] = {}
    for variant in sorted(set(variants.tolist())):
        mask = variants == variant
        if len(set(labels[mask].tolist())) == 2:
            out[variant] = float(roc_auc_score(labels[mask], scores[mask]))
    return out
