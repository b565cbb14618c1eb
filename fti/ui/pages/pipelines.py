"""Pipelines: schedules, triggers and the next fire time; run history (status, duration, window,
attempt); a run's captured logs; run now, pause and resume (writers).

"Run now" starts the pipeline as a recorded manual run in a background thread of the UI (in its
own process, like ``fti pipelines run``), so the page returns at once and the history shows it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import RedirectResponse
from starlette.routing import Route

from fti.errors import NotFoundError, ValidationError
from fti.ui.endpoints import action, page
from fti.ui.pages.feature_groups import int_param
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.pipelines.pipeline import Pipeline
    from fti.ui.session import Viewer
    from fti.ui.state import UiState

RUNS_PAGE = 25


def when(pipeline: Pipeline) -> str:
    """The schedule or trigger in words."""
    if pipeline.schedule is not None:
        spec = pipeline.schedule.to_dict()
        if "cron" in spec:
            return f"cron {spec['cron']} ({spec['timezone']})"
        return f"every {spec['every_seconds']:g} s ({spec['timezone']})"
    if pipeline.trigger is not None:
        trigger: dict[str, Any] = pipeline.trigger.to_dict()
        if trigger["type"] == "new_data":
            return f"on new data in {trigger['feature_group']} (≥ {trigger['min_rows']} rows)"
        return f"on event {trigger['event']}"
    return "manual"


def list_pipelines(request: Request, viewer: Viewer) -> Response:
    catalog = viewer.project.pipelines
    rows = [(p, when(p), next(iter(catalog.runs(p.name, limit=1)), None)) for p in catalog.list()]
    return render_page(request, viewer, "pipelines.html", section="pipelines", rows=rows)


def pipeline_detail(request: Request, viewer: Viewer) -> Response:
    catalog = viewer.project.pipelines
    pipeline = catalog.get(request.path_params["name"])
    offset = int_param(request, "offset", 0) or 0
    runs = catalog.runs(pipeline.name, limit=RUNS_PAGE + 1, offset=offset)
    return render_page(
        request,
        viewer,
        "pipeline.html",
        section="pipelines",
        pipeline=pipeline,
        when=when(pipeline),
        runs=runs[:RUNS_PAGE],
        has_next=len(runs) > RUNS_PAGE,
        offset=offset,
        page_size=RUNS_PAGE,
        active=any(r.status in ("queued", "running") for r in runs),
    )


def run_logs(request: Request, viewer: Viewer) -> Response:
    raw = request.path_params["run_id"]
    if not raw.isdecimal() or len(raw) > 12:
        raise NotFoundError(f"pipeline run {raw!r} does not exist: runs are numbered")
    catalog = viewer.project.pipelines
    run = catalog.get_run(int(raw))
    logs = catalog.logs(run.id) if run.log_keys else {}
    return render_page(request, viewer, "pipeline_run.html", section="pipelines", run=run, logs=logs)


def _parse_time(raw: str, label: str) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            f"{label} must be a date and time such as 2026-01-31T00:00, got {raw!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # the form's times are UTC


@action("writer", "running a pipeline")
def run_now(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    project = viewer.project
    pipeline = project.pipelines.get(request.path_params["name"])
    pipeline.check_params({})
    start, end = _parse_time(form.get("start", ""), "start"), _parse_time(form.get("end", ""), "end")
    if (start is None) != (end is None):
        raise ValidationError("give both start and end of the window, or neither")
    if start is None and pipeline.schedule is None and pipeline.signature.window_required:
        raise ValidationError(f"pipeline {pipeline.name!r} needs a window: give its start and end")
    if start is not None and end is not None and end <= start:
        raise ValidationError("the window's end must be after its start")
    state: UiState = request.app.state.ui
    state.start_run(project, pipeline.name, start, end)
    return RedirectResponse(
        f"{request.scope.get('root_path', '')}/pipelines/{pipeline.name}?started=1", status_code=303
    )


@action("writer", "pausing a pipeline")
def pause(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    pipeline = viewer.project.pipelines.pause(request.path_params["name"])
    return RedirectResponse(
        f"{request.scope.get('root_path', '')}/pipelines/{pipeline.name}", status_code=303
    )


@action("writer", "resuming a pipeline")
def resume(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    pipeline = viewer.project.pipelines.resume(request.path_params["name"])
    return RedirectResponse(
        f"{request.scope.get('root_path', '')}/pipelines/{pipeline.name}", status_code=303
    )


routes = [
    Route("/pipelines", page(list_pipelines), name="pipelines"),
    Route("/pipelines/runs/{run_id}", page(run_logs), name="pipeline_run"),
    Route("/pipelines/{name}", page(pipeline_detail), name="pipeline"),
    Route("/pipelines/{name}/run", run_now, methods=["POST"], name="run_pipeline"),
    Route("/pipelines/{name}/pause", pause, methods=["POST"], name="pause_pipeline"),
    Route("/pipelines/{name}/resume", resume, methods=["POST"], name="resume_pipeline"),
]
