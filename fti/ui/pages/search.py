"""Search across feature groups, features, feature views, models, deployments and pipelines by
name, description and tags (the first results of each kind, with links to the full listings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from fti.ui.endpoints import page
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer

PER_KIND = 10


def search(request: Request, viewer: Viewer) -> Response:
    q = request.query_params.get("q", "").strip()
    results = None
    if q:
        project = viewer.project
        fs, mr = project.feature_store, project.model_registry
        text = q.lower()
        results = {
            "groups": fs.search_feature_groups(q, limit=PER_KIND),
            "features": fs.search_features(q, limit=PER_KIND * 2),
            "views": fs.search_feature_views(q, limit=PER_KIND),
            "models": mr.search_models(q, limit=PER_KIND),
            "versions": mr.search_model_versions(q, limit=PER_KIND),
            # few of these per project: filtered here from the full lists
            "deployments": [d for d in project.serving.list() if text in d.name or text in d.model.lower()][
                :PER_KIND
            ],
            "pipelines": [
                p
                for p in project.pipelines.list()
                if text in p.name or text in p.description.lower() or text in p.function.lower()
            ][:PER_KIND],
        }
    return render_page(request, viewer, "search.html", section="search", q=q, results=results)


routes = [Route("/search", page(search), name="search")]
