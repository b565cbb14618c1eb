"""Home: what the project holds (counts), its recent commits, model versions and runs, and alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from fti.training.runs import search_runs
from fti.ui.endpoints import page
from fti.ui.pages import monitoring
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer


def home(request: Request, viewer: Viewer) -> Response:
    project = viewer.project
    fs, mr = project.feature_store, project.model_registry
    groups = fs.search_feature_groups(limit=0)
    views = fs.search_feature_views(limit=0)
    models = mr.search_models(limit=0)
    versions = mr.search_model_versions(order_by="created_at desc", limit=8)
    runs = search_runs(project, limit=8)
    deployments = project.serving.list()
    pipelines = project.pipelines.list()
    counts = [
        ("feature groups", groups.total, "/feature-groups"),
        ("feature views", views.total, "/feature-views"),
        ("models", models.total, "/models"),
        ("model versions", versions.total, "/models"),
        ("training runs", runs.total, "/runs"),
        ("deployments", len(deployments), "/deployments"),
        ("pipelines", len(pipelines), "/pipelines"),
    ]
    return render_page(
        request,
        viewer,
        "home.html",
        section="home",
        counts=counts,
        commits=fs.recent_commits(8),
        versions=versions.items,
        runs=runs.items,
        pipeline_runs=project.pipelines.runs(limit=8),
        alerts=monitoring.recent_alerts(project),
    )


routes = [Route("/", page(home), name="home")]
