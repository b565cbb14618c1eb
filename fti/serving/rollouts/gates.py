"""Rollout gates: the figures of each variant since a step started, and conditions on them.

**Where the figures come from.** Every server worker flushes its cumulative Prometheus counters
per deployment, variant and version (requests, 5xx errors, the latency histogram) to the catalog's
``variant_stats`` table at each poll (:class:`StatsFlusher`, every ``--poll-interval``). The
scheduler, which runs elsewhere, reads those rows: a step's figures are the rows now minus the
rows when the step started (a worker that started since counts from zero). This sees every
worker of every server on the catalog, unlike scraping one ``/metrics``, and unlike the inference
log it also holds the requests that failed and their latency.

Gates: ``{"error_rate": "< 0.01", "p99_ms": "< 50"}``, or relative to the champion over the same
step: ``{"error_rate": "<= champion + 0.005", "p99_ms": "<= champion * 1.2"}``; and on metrics
realized from labels, once the step's predictions have labels: ``{"accuracy": ">= champion - 0.01"}``,
``{"auc": ">= champion - 0.01"}`` (binary classifiers that log ``predict_proba``) or
``{"mae": "<= champion * 1.1"}`` (:data:`Realized`).
"""

from __future__ import annotations

import math
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.serving.rollouts import records

if TYPE_CHECKING:
    from fti.project import Project
    from fti.serving.metrics import ServerMetrics

SERVER_FIGURES = ("error_rate", "p99_ms")
REALIZED_FIGURES = ("accuracy", "auc", "mae")
"""Realized from labels logged for the step's predictions (see ``Realized``); judged once a
variant has labelled rows, relative to the champion or absolute."""
FIGURES = (*SERVER_FIGURES, *REALIZED_FIGURES)

Realized = Callable[["Project", str, datetime, datetime], dict[str, dict[str, Any]]]
"""``(project, deployment, start, end) -> {variant: {"accuracy"/"auc" or "mae": value, "labelled": n}}``:
realized metrics of the predictions logged in a window. Monitoring provides it
(``fti.monitoring.abtest.realized_figures``); ``fti scheduler`` passes it to ``advance``."""
_CONDITION = re.compile(r"^\s*(<=|>=|<|>)\s*(?:(champion)\s*(?:([-+*])\s*([0-9.eE+-]+))?|([0-9.eE+-]+))\s*$")
_OPS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}


@dataclass(frozen=True)
class Gate:
    """One condition: ``figure op value`` or ``figure op champion [+-*] value``."""

    figure: str
    op: str
    value: float
    relative: str | None = None  # None (absolute), "+", "-" or "*" (relative to the champion)

    def judge(self, candidate: float | None, champion: float | None) -> str | None:
        """Why the candidate fails this gate, or None when it passes (or cannot be judged)."""
        if candidate is None:
            return None
        target = self.value
        if self.relative is not None:
            if champion is None:
                return None  # nothing to compare with (no champion traffic in the step)
            target = {"+": champion + self.value, "-": champion - self.value, "*": champion * self.value}[
                self.relative
            ]
        if _OPS[self.op](float(candidate), float(target)):
            return None
        return f"{self.figure} {candidate:.4g} is not {self.op} {target:.4g}"


def parse_gates(gates: object) -> list[Gate]:
    """``{figure: condition}`` -> gates.

    Raises:
        ValidationError: not a dict, an unknown figure or a malformed condition.
    """
    if gates is None:
        return []
    if not isinstance(gates, Mapping):
        raise ValidationError(f"gates must be a dict {{figure: condition}}, got {type(gates).__name__}")
    out = []
    for figure, condition in gates.items():
        if figure not in FIGURES:
            raise ValidationError(
                f"unknown gate {figure!r}: rollouts gate on the server's figures {list(SERVER_FIGURES)} and "
                f"the realized {list(REALIZED_FIGURES)} per variant"
            )
        match = _CONDITION.match(condition) if isinstance(condition, str) else None
        if match is None:
            raise ValidationError(
                f"invalid gate {figure}: {condition!r}; write '< 0.01', '<= champion + 0.005' or "
                "'<= champion * 1.2'"
            )
        op, champion, sign, offset, number = match.groups()
        try:
            value = float(number if champion is None else offset or ("1" if sign == "*" else "0"))
        except ValueError:
            raise ValidationError(f"invalid number in gate {figure}: {condition!r}") from None
        if not math.isfinite(value):
            raise ValidationError(f"gate {figure}: {condition!r} needs a finite number")
        out.append(Gate(figure, op, value, None if champion is None else (sign or "+")))
    return out


def _key(row: records.VariantStats) -> str:
    return f"{row.server}|{row.variant}|{row.model_version}"


def snapshot(rows: list[records.VariantStats]) -> dict[str, Any]:
    """The counters now, as a step's baseline."""
    return {_key(r): {"requests": r.requests, "errors": r.errors, "latency": r.latency} for r in rows}


def figures(rows: list[records.VariantStats], baseline: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per variant since ``baseline``: requests, errors, error_rate, p99_ms (None without requests;
    p99 is the upper bound of the latency bucket holding the 99th percentile)."""
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        before = baseline.get(_key(row), {"requests": 0, "errors": 0, "latency": []})
        earlier = {float(b): c for b, c in before["latency"]}
        t = totals.setdefault(row.variant, {"requests": 0, "errors": 0, "latency": {}})
        t["requests"] += row.requests - before["requests"]
        t["errors"] += row.errors - before["errors"]
        for bound, count in row.latency:
            t["latency"][float(bound)] = (
                t["latency"].get(float(bound), 0) + count - earlier.get(float(bound), 0)
            )
    out = {}
    for variant, t in sorted(totals.items()):
        requests, errors = int(t["requests"]), int(t["errors"])
        out[variant] = {
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests if requests else None,
            "p99_ms": _quantile_ms(t["latency"], 0.99),
        }
    return out


def jsonable(figures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``figures`` as the catalog stores them (an infinite p99 as the string ``"+Inf"``)."""
    return {
        v: {k: "+Inf" if isinstance(x, float) and math.isinf(x) else x for k, x in f.items()}
        for v, f in figures.items()
    }


def _quantile_ms(cumulative: dict[float, float], q: float) -> float | None:
    bounds = sorted(cumulative)
    total = cumulative.get(math.inf, cumulative[bounds[-1]] if bounds else 0)
    if not total:
        return None
    for bound in bounds:
        if cumulative[bound] >= q * total:
            return bound * 1000.0
    return math.inf


class StatsFlusher:
    """Writes one server worker's per-variant counters to the catalog (called at every poll)."""

    def __init__(self, project: Project, metrics: ServerMetrics) -> None:
        self._project = project
        self._metrics = metrics
        self.server = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def flush(self) -> None:
        rows: dict[tuple[str, str, int], dict[str, Any]] = {}

        def row(labels: Mapping[str, str]) -> dict[str, Any]:
            key = (labels["model"], labels["variant"], int(labels["version"]))
            return rows.setdefault(key, {"requests": 0, "errors": 0, "latency": []})

        for family in (*self._metrics.requests.collect(), *self._metrics.failures.collect(),
                       *self._metrics.latency.collect()):  # fmt: skip
            for sample in family.samples:
                if sample.name == "fti_inference_requests_total":
                    row(sample.labels)["requests"] += int(sample.value)
                elif sample.name == "fti_inference_failures_total" and int(sample.labels["status"]) >= 500:
                    row(sample.labels)["errors"] += int(sample.value)
                elif sample.name == "fti_inference_latency_seconds_bucket":
                    # the bound as Prometheus writes it ("+Inf" too): JSON has no infinity
                    row(sample.labels)["latency"].append([sample.labels["le"], int(sample.value)])
        records.save_stats(self._project.backends.catalog, self._project.id, self.server, rows)
