"""Monitoring: the project's monitors, each one's drift per column and performance over its
windows, and alerts.

Everything here is read from the monitors' run records in the catalog (each run keeps a
summary: every column's first drift test, the window's realized and estimated performance), so
a page is a fixed number of catalog queries and never reads the results tables. :func:`recent_alerts`
feeds the home page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from fti.ui.endpoints import page
from fti.ui.pages.feature_groups import int_param
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.monitoring.monitors import Monitor
    from fti.monitoring.records import AlertRecord, RunRecord
    from fti.project import Project
    from fti.ui.session import Viewer

WINDOWS = 48
"""Windows shown on a monitor's page by default (``?last=`` up to :data:`MAX_WINDOWS`)."""
MAX_WINDOWS = 500


def recent_alerts(project: Project) -> list[str]:
    """The project's five most recent alerts, one line each."""
    return [
        f"{a.monitor}: {a.kind} in [{a.window_start:%Y-%m-%d %H:%M}, {a.window_end:%Y-%m-%d %H:%M}) ({a.status})"
        for a in project.monitoring.alerts(limit=5)
    ]


def source_of(monitor: Monitor) -> str:
    """What the monitor watches, in words."""
    source = monitor.to_dict()["source"]
    return f"{source['kind'].replace('_', ' ')} {source['name']}"


def span(seconds: float) -> str:
    """A window length as the API takes it (``1h``, ``7d``)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def breaches(alert: AlertRecord) -> str:
    """What an alert's breaches were, in one line: drifted columns with their statistic,
    performance conditions with the value that broke them."""
    parts = []
    for d in alert.breaches:
        if "column" in d:
            parts.append(f"{d['column']} ({d.get('test')} {_num(d.get('statistic'))})")
        else:
            parts.append(f"{d.get('condition')}: {d.get('kind')} {_num(d.get('value'))}")
    return "; ".join(parts)


def _num(value: Any) -> str:
    return "?" if value is None else f"{value:.4g}"


def list_monitors(request: Request, viewer: Viewer) -> Response:
    monitoring = viewer.project.monitoring
    rows = [(m, source_of(m), next(iter(m.runs(limit=1)), None)) for m in monitoring.list_monitors()]
    return render_page(
        request,
        viewer,
        "monitoring.html",
        section="monitoring",
        rows=rows,
        alerts=monitoring.alerts(limit=20),
        span=span,
        breaches=breaches,
    )


def monitor_detail(request: Request, viewer: Viewer) -> Response:
    monitor = viewer.project.monitoring.get_monitor(request.path_params["name"])
    last = min(int_param(request, "last", WINDOWS, minimum=1) or WINDOWS, MAX_WINDOWS)
    runs = list(reversed(monitor.runs(limit=last)))  # oldest first
    evaluated = [r for r in runs if r.status == "ok"]
    columns = [*monitor.features, *monitor.predictions]
    return render_page(
        request,
        viewer,
        "monitor.html",
        section="monitoring",
        monitor=monitor,
        config=monitor.to_dict(),
        source=source_of(monitor),
        runs=list(reversed(runs)),  # newest first in the table
        last=last,
        latest=evaluated[-1].summary.get("columns", {}) if evaluated else {},
        drift_charts=drift_charts(evaluated, columns),
        performance_chart=performance_chart(evaluated),
        alerts=monitor.alerts(limit=20),
        span=span,
        breaches=breaches,
    )


def drift_charts(runs: list[RunRecord], columns: list[str]) -> dict[str, dict[str, Any]]:
    """Per column, its drift statistic and threshold over the evaluated windows (x: window start,
    seconds since the epoch)."""
    x = [int(r.window_start.timestamp()) for r in runs]
    charts: dict[str, dict[str, Any]] = {}
    for column in columns:
        infos = [r.summary.get("columns", {}).get(column) or {} for r in runs]
        if not any(i.get("statistic") is not None for i in infos):
            continue
        test = next((i["test"] for i in reversed(infos) if i.get("test")), "statistic")
        charts[column] = {
            "kind": "line",
            "time": True,
            "x": x,
            "series": {
                test: [i.get("statistic") for i in infos],
                "threshold": [i.get("threshold") for i in infos],
            },
            "xlabel": "window",
        }
    return charts


def performance_chart(runs: list[RunRecord]) -> dict[str, Any] | None:
    """Realized and estimated metrics over the evaluated windows, or None when there are none."""
    keys = sorted({k for r in runs for k, v in (r.summary.get("performance") or {}).items() if v is not None})
    if not keys:
        return None
    return {
        "kind": "line",
        "time": True,
        "x": [int(r.window_start.timestamp()) for r in runs],
        "series": {
            k.replace(":", " "): [(r.summary.get("performance") or {}).get(k) for r in runs] for k in keys
        },
        "xlabel": "window",
    }


routes = [
    Route("/monitoring", page(list_monitors), name="monitoring"),
    Route("/monitoring/{name}", page(monitor_detail), name="monitor"),
]
