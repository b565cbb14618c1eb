"""Feature views: the searchable list, and one version's query (groups and joins), labels,
transformations, training datasets (split, row counts, input versions) and the models trained on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from fti.ui.endpoints import page
from fti.ui.pages.feature_groups import int_param, version_param
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer

PAGE = 50
DATASETS_SHOWN = 20


def list_views(request: Request, viewer: Viewer) -> Response:
    q = request.query_params.get("q", "")
    tag = request.query_params.get("tag") or None
    found = viewer.project.feature_store.search_feature_views(
        q, tag=tag, offset=int_param(request, "offset", 0) or 0, limit=PAGE
    )
    return render_page(
        request, viewer, "feature_views.html", section="feature_views", page=found, q=q, tag=tag
    )


def view_detail(request: Request, viewer: Viewer) -> Response:
    project = viewer.project
    fv = project.feature_store.get_feature_view(
        request.path_params["name"], version_param(request.path_params["version"], "feature view")
    )
    versions = fv.training_dataset_versions()
    datasets = [fv.training_dataset(v) for v in reversed(versions[-DATASETS_SHOWN:])]
    models = project.model_registry.search_model_versions(
        feature_view=(fv.name, fv.version), order_by="created_at desc", limit=20
    )
    return render_page(
        request,
        viewer,
        "feature_view.html",
        section="feature_views",
        fv=fv,
        tags=fv.tags,
        parts=fv.query.parts,
        columns=fv.query.columns(),
        dataset_count=len(versions),
        datasets=datasets,
        models=models,
    )


routes = [
    Route("/feature-views", page(list_views), name="feature_views"),
    Route("/feature-views/{name}/{version}", page(view_detail), name="feature_view"),
]
