"""Training runs: the searchable list (by name, description, tag and status), and one run's
params, metric series as charts, code and environment, tags and the model versions it registered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from fti.errors import NotFoundError
from fti.training.runs import RUN_STATUSES, get_run, search_runs
from fti.ui.endpoints import page
from fti.ui.pages.feature_groups import int_param
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer

PAGE = 50


def list_runs(request: Request, viewer: Viewer) -> Response:
    q = request.query_params.get("q", "")
    status = request.query_params.get("status") or None
    tag = request.query_params.get("tag") or None
    found = search_runs(
        viewer.project, q, status=status, tag=tag, offset=int_param(request, "offset", 0) or 0, limit=PAGE
    )
    metric_names = sorted({k for r in found for k in r.metrics})[:8]
    return render_page(
        request,
        viewer,
        "runs.html",
        section="runs",
        page=found,
        q=q,
        wanted_status=status,
        statuses=RUN_STATUSES,
        metric_names=metric_names,
    )


def run_detail(request: Request, viewer: Viewer) -> Response:
    raw = request.path_params["run_id"]
    if not raw.isdecimal() or len(raw) > 12:
        raise NotFoundError(f"run {raw!r} does not exist: runs are numbered")
    run = get_run(viewer.project, int(raw))
    record = run.record()
    charts = {
        key: {
            "kind": "line",
            "x": [p.step for p in points],
            "series": {key: [p.value for p in points]},
            "xlabel": "step",
        }
        for key, points in run.metric_history().items()
    }
    return render_page(
        request,
        viewer,
        "run.html",
        section="runs",
        run=record,
        tags=run.tags,
        charts=charts,
        models=run.models(),
    )


routes = [
    Route("/runs", page(list_runs), name="runs"),
    Route("/runs/{run_id}", page(run_detail), name="run"),
]
