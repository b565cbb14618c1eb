"""The lineage graph of a feature group, feature view, model version or deployment, drawn as SVG
whose nodes link to their pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from fti.ui.endpoints import page
from fti.ui.lineage import COLUMNS, NODE_H, NODE_W, lineage
from fti.ui.pages.feature_groups import version_param
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer

KINDS = {"fg": "feature group", "fv": "feature view", "model": "model"}


def versioned(request: Request, viewer: Viewer) -> Response:
    kind, name = request.path_params["kind"], request.path_params["name"]
    if kind not in KINDS:
        from fti.errors import NotFoundError

        raise NotFoundError(f"no lineage for {kind!r}: use fg, fv, model or deployment")
    version = version_param(request.path_params["version"], KINDS[kind])
    return _render(request, viewer, kind, name, version, f"{KINDS[kind]} {name} v{version}")


def deployment(request: Request, viewer: Viewer) -> Response:
    name = request.path_params["name"]
    return _render(request, viewer, "deployment", name, None, f"deployment {name}")


def _render(
    request: Request, viewer: Viewer, kind: str, name: str, version: int | None, title: str
) -> Response:
    graph = lineage(viewer.project, kind, name, version)
    return render_page(
        request,
        viewer,
        "lineage.html",
        title=title,
        graph=graph,
        paths=graph.paths(),
        columns=COLUMNS,
        node_w=NODE_W,
        node_h=NODE_H,
    )


routes = [
    Route("/lineage/deployment/{name}", page(deployment), name="lineage_deployment"),
    Route("/lineage/{kind}/{name}/{version}", page(versioned), name="lineage"),
]
