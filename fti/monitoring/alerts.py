"""Alerts: what breached in a window, recorded once per cooldown and delivered.

A monitor's ``alert=fti.alert(...)`` says when to alert and how:

- **drift**: ``drift="dataset"`` (default: at least half of the monitored columns drift),
  ``"any"`` (any column drifts) or a list of columns (any of them drifts);
- **performance**: the monitor's ``performance={"roc_auc": "< 0.85", "accuracy": "drop > 0.05"}``
  conditions (realized values when labels exist, else CBPE's estimates; ``drop``/``rise`` compare
  with the model's metric on its test split).

Every breach is recorded in the catalog (monitor, window, what breached and the values). Within
``cooldown`` after a delivered alert of the same kind, later breaches are recorded as
``suppressed`` and not delivered again. A delivered alert fires the pipeline event ``event``
(``drift_detected`` by default: pipelines declared with ``fti.on_event("drift_detected")``, e.g.
retraining, run on the scheduler's next tick), POSTs the alert as JSON to ``webhook`` (retried
with exponential backoff; a failing webhook is recorded, never fails the monitor run) and is
written to the ``fti.monitoring`` log.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.monitoring.records import AlertRecord, MonitorRecord, RunRecord
    from fti.project import Project

log = logging.getLogger("fti.monitoring")

DRIFT_MODES = ("dataset", "any")
_CONDITION = re.compile(r"^\s*(drop|rise)?\s*(<=|>=|<|>)\s*(-?\d+(\.\d+)?([eE]-?\d+)?)\s*$")
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse", "mape")


@dataclass(frozen=True)
class AlertSpec:
    """How a monitor alerts (build it with :func:`alert`)."""

    event: str | None = "drift_detected"
    webhook: str | None = None
    cooldown: timedelta = timedelta(hours=6)
    drift: str | tuple[str, ...] | None = "dataset"
    retries: int = 3
    backoff_s: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "webhook": self.webhook,
            "cooldown_seconds": self.cooldown.total_seconds(),
            "drift": list(self.drift) if isinstance(self.drift, tuple) else self.drift,
            "retries": self.retries,
            "backoff_s": self.backoff_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertSpec:
        drift = data.get("drift", "dataset")
        return cls(
            event=data.get("event"),
            webhook=data.get("webhook"),
            cooldown=timedelta(seconds=float(data.get("cooldown_seconds", 21600))),
            drift=tuple(drift) if isinstance(drift, list) else drift,
            retries=int(data.get("retries", 3)),
            backoff_s=float(data.get("backoff_s", 0.5)),
        )


def alert(
    *,
    event: str | None = "drift_detected",
    webhook: str | None = None,
    cooldown: str | float | timedelta = "6h",
    drift: str | Sequence[str] | None = "dataset",
    retries: int = 3,
) -> AlertSpec:
    """How a monitor alerts: ``fti.alert(event="drift_detected", webhook="https://...", cooldown="6h")``.

    Args:
        event: The pipeline event to fire (None: fire none).
        webhook: An ``http(s)://`` URL that receives each alert as a JSON POST (None: none).
        cooldown: After a delivered alert, further breaches of the same kind within this time are
            recorded as suppressed (``"6h"``, seconds or a timedelta).
        drift: When drift alerts: ``"dataset"`` (at least half the columns drift), ``"any"``,
            a list of column names, or None (only performance alerts).
        retries: Extra attempts of a failing webhook (exponential backoff from 0.5 s).
    """
    from fti._names import check_name
    from fti.pipelines.schedules import parse_duration

    if event is not None:
        check_name(event, "event")
    if webhook is not None and (not isinstance(webhook, str) or not re.match(r"^https?://[^\s/]+", webhook)):
        raise ValidationError(f"webhook must be an http:// or https:// URL, got {webhook!r}")
    span = parse_duration(cooldown, "cooldown") if not isinstance(cooldown, timedelta) else cooldown
    if span < timedelta(0):
        raise ValidationError(f"cooldown must not be negative, got {cooldown!r}")
    mode: str | tuple[str, ...] | None
    if drift is None or (isinstance(drift, str) and drift in DRIFT_MODES):
        mode = drift
    elif (
        isinstance(drift, Sequence)
        and not isinstance(drift, str)
        and drift
        and all(isinstance(c, str) for c in drift)
    ):
        mode = tuple(drift)
    else:
        raise ValidationError(
            f"drift must be 'dataset', 'any', a list of column names or None, got {drift!r}"
        )
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ValidationError(f"retries must be an integer from 0 to 10, got {retries!r}")
    return AlertSpec(event, webhook, span, mode, retries)


@dataclass(frozen=True)
class Condition:
    """A performance alert condition, e.g. ``roc_auc < 0.85`` or ``accuracy drop > 0.05``."""

    metric: str
    op: str
    value: float
    relative: str | None = None
    """``"drop"`` or ``"rise"``: compared with the model's value on its test split."""

    def text(self) -> str:
        return f"{self.metric} {self.relative + ' ' if self.relative else ''}{self.op} {self.value:g}"

    def breached(self, value: float, reference: float | None) -> bool | None:
        """Whether ``value`` breaches (None when a relative condition has no reference)."""
        if self.relative is not None:
            if reference is None:
                return None
            value = reference - value if self.relative == "drop" else value - reference
        return {
            "<": value < self.value,
            "<=": value <= self.value,
            ">": value > self.value,
            ">=": value >= self.value,
        }[self.op]


def parse_conditions(conditions: Any) -> list[Condition]:
    """``{"roc_auc": "< 0.85", "accuracy": "drop > 0.05"}`` -> conditions (checked)."""
    if conditions is None:
        return []
    if not isinstance(conditions, dict):
        raise ValidationError(
            f"performance must be a dict of metric -> condition, e.g. {{'roc_auc': '< 0.85'}}, got {conditions!r}"
        )
    out = []
    for metric, text in conditions.items():
        if metric not in METRICS:
            raise ValidationError(f"unknown performance metric {metric!r}: use one of {', '.join(METRICS)}")
        match = _CONDITION.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValidationError(
                f"invalid condition {text!r} for {metric!r}: use '< 0.85', '>= 0.3', 'drop > 0.05' or 'rise > 10'"
            )
        out.append(Condition(metric, match.group(2), float(match.group(3)), match.group(1)))
    return out


def public_url(url: str) -> str:
    """``url`` without credentials or query string (tokens there never reach records or logs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def post_webhook(url: str, payload: dict[str, Any], retries: int, backoff_s: float) -> dict[str, Any]:
    """POST ``payload`` as JSON; retried on errors and 5xx with exponential backoff. Never raises."""
    import urllib.error
    import urllib.request

    body = json.dumps(payload, default=str).encode()
    outcome: dict[str, Any] = {"url": public_url(url), "attempts": 0, "status_code": None, "error": None}
    for attempt in range(retries + 1):
        outcome["attempts"] = attempt + 1
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json", "User-Agent": "fti-monitoring"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                outcome["status_code"] = int(response.status)
                outcome["error"] = None
                return outcome
        except urllib.error.HTTPError as exc:
            outcome["status_code"] = int(exc.code)
            outcome["error"] = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                return outcome  # the receiver refused it: retrying will not help
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            outcome["error"] = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < retries:
            time.sleep(backoff_s * (2**attempt))
    return outcome


@dataclass(frozen=True)
class Breach:
    """What breached: a drifted column or a performance condition."""

    kind: str
    details: list[dict[str, Any]] = field(default_factory=list)


def deliver(
    project: Project,
    monitor: MonitorRecord,
    run: RunRecord,
    spec: AlertSpec,
    breach: Breach,
    extra: dict[str, Any],
    now: datetime | None = None,
) -> AlertRecord:
    """Record ``breach`` and deliver it unless an alert of its kind was delivered within the cooldown."""
    from fti.monitoring import records

    catalog = project.backends.catalog
    now = now or datetime.now(UTC)
    last = records.last_delivered(catalog, monitor.id, breach.kind)
    suppressed = last is not None and now - last.created_at < spec.cooldown
    record = records.record_alert(
        catalog,
        monitor.id,
        run_id=run.id,
        window_start=run.window_start,
        window_end=run.window_end,
        kind=breach.kind,
        breaches=breach.details,
        status="suppressed" if suppressed else "delivered",
        created_at=now,
    )
    what = ", ".join(str(d.get("column") or d.get("condition")) for d in breach.details)
    if suppressed:
        assert last is not None
        log.info(
            "monitor %s: %s alert for [%s, %s) suppressed (cooldown after alert %s): %s",
            monitor.name, breach.kind, run.window_start.isoformat(), run.window_end.isoformat(), last.id, what,
        )  # fmt: skip
        return record
    log.warning(
        "monitor %s: %s in window [%s, %s): %s",
        monitor.name, breach.kind, run.window_start.isoformat(), run.window_end.isoformat(), what,
    )  # fmt: skip
    payload = {
        "project": project.name,
        "monitor": monitor.name,
        "alert_id": record.id,
        "run_id": run.id,
        "kind": breach.kind,
        "window_start": run.window_start.isoformat(),
        "window_end": run.window_end.isoformat(),
        "breaches": breach.details,
        **extra,
    }
    event_id = None
    if spec.event is not None:
        from fti.pipelines import fire_event

        event_id = fire_event(project, spec.event, payload)
    webhook = (
        None if spec.webhook is None else post_webhook(spec.webhook, payload, spec.retries, spec.backoff_s)
    )
    if webhook is not None and webhook["error"]:
        log.warning(
            "monitor %s: webhook %s failed after %s attempt(s): %s",
            monitor.name,
            webhook["url"],
            webhook["attempts"],
            webhook["error"],
        )
    return records.update_alert(catalog, record.id, event_id=event_id, webhook=webhook)
