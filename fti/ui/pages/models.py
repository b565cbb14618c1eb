"""Models: the searchable list; a model's versions with sortable metrics, aliases and their history;
a version's metrics, params, signature, lineage, run metric charts, artifacts (images shown) and
evaluations on data (overall, per slice with row counts, fairness, the baseline on the same rows);
side-by-side comparison of versions; moving an alias (writers)."""

from __future__ import annotations

import mimetypes
from typing import TYPE_CHECKING, Any

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fti.errors import NotFoundError, ValidationError
from fti.registry.evaluation import FAIRNESS_METRICS
from fti.registry.evaluation.metrics import GROUP_METRICS, HEADLINE
from fti.training.runs import get_run
from fti.ui.endpoints import action, page
from fti.ui.pages.feature_groups import int_param, version_param
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request

    from fti.ui.session import Viewer

PAGE = 50
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
"""Shown inline; anything else (SVG included: it can carry script) is served as a download."""


def list_models(request: Request, viewer: Viewer) -> Response:
    q = request.query_params.get("q", "")
    found = viewer.project.model_registry.search_models(
        q, offset=int_param(request, "offset", 0) or 0, limit=PAGE
    )
    return render_page(request, viewer, "models.html", section="models", page=found, q=q)


def model_detail(request: Request, viewer: Viewer) -> Response:
    mr = viewer.project.model_registry
    name = request.path_params["name"]
    order = request.query_params.get("order") or "version desc"
    q = request.query_params.get("q", "")
    versions = mr.search_model_versions(
        q, name=name, order_by=order, offset=int_param(request, "offset", 0) or 0, limit=PAGE
    )
    metric_names = sorted({k for v in versions for k in v.metrics})
    return render_page(
        request,
        viewer,
        "model.html",
        section="models",
        name=name,
        versions=versions,
        metric_names=metric_names,
        order=order,
        q=q,
        aliases=mr.aliases(name),
        history=list(reversed(mr.alias_history(name)))[:30],
    )


def version_detail(request: Request, viewer: Viewer) -> Response:
    project = viewer.project
    mv = project.model_registry.get_model(
        request.path_params["name"], version=version_param(request.path_params["version"], "model")
    )
    lineage = mv.lineage
    series: dict[str, Any] = {}
    if mv.run_id is not None:
        for key, points in get_run(project, mv.run_id).metric_history().items():
            series[key] = {
                "kind": "line",
                "x": [p.step for p in points],
                "series": {key: [p.value for p in points]},
                "xlabel": "step",
            }
    artifacts = [
        (path, mimetypes.guess_type(path)[0] or "application/octet-stream") for path in sorted(mv.artifacts)
    ]
    evaluations = mv.evaluations()
    wanted = int_param(request, "evaluation", None, minimum=1)
    evaluation = next((e for e in evaluations if e.number == wanted), None) if wanted else None
    if wanted and evaluation is None:
        raise NotFoundError(
            f"{mv.ref} has no evaluation {wanted} (evaluations: {[e.number for e in evaluations] or 'none'})"
        )
    evaluation = evaluation or (evaluations[-1] if evaluations else None)
    deployments = []
    for deployment in project.serving.list():
        try:
            serving = deployment.model_version()
        except Exception:  # a deployment whose model is gone does not serve this version
            continue
        if (serving.name, serving.version) == (mv.name, mv.version):
            deployments.append(deployment)
    return render_page(
        request,
        viewer,
        "version.html",
        section="models",
        mv=mv,
        tags=mv.tags,
        aliases=mv.aliases,
        lineage=lineage,
        series=series,
        artifacts=artifacts,
        images=IMAGE_TYPES,
        deployments=deployments,
        evaluation=evaluation,
        evaluation_numbers=[e.number for e in evaluations],
        headline=HEADLINE[evaluation.task] if evaluation else (),
        fairness_metrics=FAIRNESS_METRICS,
        group_metrics=GROUP_METRICS,
    )


def compare(request: Request, viewer: Viewer) -> Response:
    mr = viewer.project.model_registry
    name = request.path_params["name"]
    wanted = request.query_params.getlist("v")
    if len(wanted) < 2:
        raise ValidationError("pick at least two versions to compare (tick them in the list)")
    if len(wanted) > 10:
        raise ValidationError("compare at most 10 versions at a time")
    versions = [mr.get_model(name, version=version_param(v, "model")) for v in wanted]
    lineages = [v.lineage for v in versions]
    params = sorted({k for li in lineages if li.run for k in li.run.params})
    metrics = sorted({k for v in versions for k in v.metrics})
    best: dict[str, float] = {}
    for key in metrics:
        values = [v.metrics[key] for v in versions if key in v.metrics]
        best[key] = max(values)
    return render_page(
        request,
        viewer,
        "compare.html",
        section="models",
        name=name,
        versions=versions,
        lineages=lineages,
        params=params,
        metrics=metrics,
        best=best,
        inputs=sorted({s.name for v in versions for s in v.signature.inputs}),
    )


def artifact(request: Request, viewer: Viewer) -> Response:
    mv = viewer.project.model_registry.get_model(
        request.path_params["name"], version=version_param(request.path_params["version"], "model")
    )
    path = request.path_params["path"]
    data = mv.read_artifact(path)  # digest-checked
    media = mimetypes.guess_type(path)[0] or "application/octet-stream"
    headers = {
        # no script may run from an artifact, whatever it contains
        "content-security-policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
        "cache-control": "private, max-age=3600",
    }
    if media not in IMAGE_TYPES:
        media = "application/octet-stream"
        headers["content-disposition"] = f'attachment; filename="{path.rsplit("/", 1)[-1]}"'
    return Response(data, media_type=media, headers=headers)


@action("writer", "moving a model alias")
def set_alias(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    mr = viewer.project.model_registry
    alias = form.get("alias", "").strip()
    version = form.get("version", "")
    if not version.isdecimal():
        raise ValidationError(f"version must be a version number, got {version!r}")
    mr.set_alias(name, int(version), alias, reason=f"set in the web UI by {viewer.principal.name}")
    return RedirectResponse(f"{request.scope.get('root_path', '')}/models/{name}", status_code=303)


routes = [
    Route("/models", page(list_models), name="models"),
    Route("/models/{name}", page(model_detail), name="model"),
    Route("/models/{name}/compare", page(compare), name="compare"),
    Route("/models/{name}/alias", set_alias, methods=["POST"], name="set_alias"),
    Route("/models/{name}/{version}", page(version_detail), name="model_version"),
    Route("/models/{name}/{version}/artifacts/{path:path}", page(artifact), name="artifact"),
]
