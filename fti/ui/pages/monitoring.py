"""Monitoring: drift per feature over time, realized and estimated performance, alerts.

Monitoring (``fti.monitoring``) is being built; until it exists this page says so and the home
page shows no alerts. When it lands, this module is the one place that reads monitors for the UI:
:func:`recent_alerts` for the home page and the ``/monitoring`` page.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from starlette.routing import Route

from fti.ui.endpoints import page
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.project import Project
    from fti.ui.session import Viewer


def available() -> bool:
    """Whether this installation has the monitoring package."""
    return importlib.util.find_spec("fti.monitoring") is not None


def recent_alerts(project: Project) -> list[str] | None:
    """The project's recent alerts, or None while monitoring is not available."""
    if not available():
        return None
    return [
        f"{a.monitor}: {a.kind} in [{a.window_start:%Y-%m-%d %H:%M}, {a.window_end:%Y-%m-%d %H:%M}) ({a.status})"
        for a in project.monitoring.alerts(limit=5)
    ]


def monitoring(request: Request, viewer: Viewer) -> Response:
    return render_page(request, viewer, "monitoring.html", section="monitoring", available=available())


routes = [Route("/monitoring", page(monitoring), name="monitoring")]
