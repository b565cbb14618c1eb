"""Alerts: recorded once per cooldown, delivered as a pipeline event and a webhook POST (retried
with backoff, never failing the run), and on performance conditions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

import fti
from fti.errors import ValidationError
from fti.monitoring.alerts import parse_conditions, public_url
from fti.pipelines import records as pipeline_records
from tests.unit.monitoring.conftest import HOUR, T0


class Receiver:
    """A webhook receiver on loopback that answers ``statuses`` in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([500, 503])
    yield r
    r.close()


def test_drift_alerts_fire_the_event_and_the_webhook_once_per_cooldown(system, windows, receiver) -> None:  # type: ignore[no-untyped-def]
    project = system["project"]
    spec = fti.alert(event="drift_detected", webhook=receiver.url, cooldown="6h")
    mon = project.monitoring.create_monitor("alerting", deployment="fraud", window="1h", alert=spec)
    assert mon.run(T0, T0 + HOUR).alerts == []  # no drift: no alert
    events_before = len(
        pipeline_records.events_after(project.backends.catalog, project.id, "drift_detected", 0)
    )
    first = mon.run(T0 + HOUR, T0 + 2 * HOUR)
    [alert] = first.alerts
    assert (alert.kind, alert.status, alert.monitor) == ("drift", "delivered", "alerting")
    assert {b["column"] for b in alert.breaches} == {"amount", "city", "predict", "predict_proba_1"}
    events = pipeline_records.events_after(project.backends.catalog, project.id, "drift_detected", 0)
    assert len(events) == events_before + 1 and events[-1].id == alert.event_id
    assert events[-1].payload["monitor"] == "alerting" and events[-1].payload["dataset_drift"] is True  # type: ignore[index]
    # the webhook failed twice (500, 503) and was retried with backoff; the secret stays out of the record
    assert alert.webhook == {
        "url": receiver.url.split("?")[0],
        "attempts": 3,
        "status_code": 200,
        "error": None,
    }
    assert len(receiver.bodies) == 3 and receiver.bodies[-1]["window_start"] == (T0 + HOUR).isoformat()
    second = mon.run(T0 + HOUR, T0 + 2 * HOUR)  # within the cooldown: recorded, not delivered
    assert [(a.status, a.event_id, a.webhook) for a in second.alerts] == [("suppressed", None, None)]
    assert len(receiver.bodies) == 3
    assert [a.status for a in mon.alerts()] == ["suppressed", "delivered"]
    assert [a.id for a in project.monitoring.alerts("alerting")] == [a.id for a in mon.alerts()]
    from fti.ui.pages.monitoring import recent_alerts  # what the web UI's home page lists

    assert "alerting: drift in [2026-03-02 01:00, 2026-03-02 02:00) (suppressed)" in recent_alerts(project)


def test_a_failing_webhook_never_fails_the_run(system, windows) -> None:  # type: ignore[no-untyped-def]
    dead = Receiver([500] * 10)
    try:
        spec = fti.alert(webhook=dead.url, event=None, retries=1, drift="any")
        mon = system["project"].monitoring.create_monitor(
            "dead_hook", deployment="fraud", window="1h", alert=spec
        )
        [alert] = mon.run(T0 + HOUR, T0 + 2 * HOUR).alerts
    finally:
        dead.close()
    assert alert.status == "delivered" and alert.event_id is None
    assert alert.webhook == {
        "url": dead.url.split("?")[0],
        "attempts": 2,
        "status_code": 500,
        "error": "HTTP 500",
    }
    unreachable = fti.alert(webhook="http://127.0.0.1:9/nothing", event=None, retries=0, drift=["city"])
    mon = system["project"].monitoring.create_monitor(
        "no_hook", deployment="fraud", window="1h", alert=unreachable
    )
    [alert] = mon.run(T0 + HOUR, T0 + 2 * HOUR).alerts
    assert [b["column"] for b in alert.breaches] == ["city"]
    assert alert.webhook["attempts"] == 1 and "Connection refused" in alert.webhook["error"]  # type: ignore[index]


def test_performance_conditions_alert_on_the_estimate_before_labels(system, windows) -> None:  # type: ignore[no-untyped-def]
    spec = fti.alert(event="performance_dropped", drift=None, cooldown=timedelta(0))
    mon = system["project"].monitoring.create_monitor(
        "perf_alert",
        deployment="fraud",
        window="1h",
        alert=spec,
        performance={"roc_auc": "< 0.99", "accuracy": "drop > 0.5"},
    )
    [alert] = mon.run(T0 + HOUR, T0 + 2 * HOUR).alerts  # drift=None: no drift alert
    assert alert.kind == "performance"
    [breach] = alert.breaches
    assert breach["condition"] == "roc_auc < 0.99" and breach["kind"] in ("estimated", "realized")
    assert mon.run(T0 + HOUR, T0 + 2 * HOUR).alerts[0].status == "delivered"  # cooldown 0


def test_alert_and_condition_arguments_are_checked() -> None:
    with pytest.raises(ValidationError, match="webhook must be an http"):
        fti.alert(webhook="ftp://example.com")
    with pytest.raises(ValidationError, match="invalid cooldown"):
        fti.alert(cooldown="soon")
    with pytest.raises(ValidationError, match="drift must be"):
        fti.alert(drift="some")
    with pytest.raises(ValidationError, match="invalid event name"):
        fti.alert(event="Drift Detected")
    with pytest.raises(ValidationError, match="unknown performance metric 'auc'"):
        parse_conditions({"auc": "< 0.8"})
    with pytest.raises(ValidationError, match=r"invalid condition 'below 0.8'"):
        parse_conditions({"roc_auc": "below 0.8"})
    [drop] = parse_conditions({"accuracy": "drop > 0.05"})
    assert drop.breached(0.80, 0.9) and not drop.breached(0.88, 0.9) and drop.breached(0.8, None) is None
    assert (
        public_url("https://user:pw@hooks.example.com:8443/a/b?token=x#f")
        == "https://hooks.example.com:8443/a/b"
    )
