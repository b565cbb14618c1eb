"""API keys (admins): list with roles, create (the key is shown once), revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import RedirectResponse
from starlette.routing import Route

from fti.serving.auth import ROLES, create_key, list_keys, revoke_key
from fti.ui.endpoints import action, page
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer


def keys(request: Request, viewer: Viewer) -> Response:
    viewer.principal.require("admin", "managing API keys")
    return render_page(
        request, viewer, "keys.html", keys=list_keys(viewer.project), roles=ROLES, created=None
    )


@action("admin", "creating an API key")
def create(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    name, role = form.get("name", "").strip(), form.get("role", "reader")
    key = create_key(viewer.project, name, role)
    return render_page(
        request,
        viewer,
        "keys.html",
        keys=list_keys(viewer.project),
        roles=ROLES,
        created={"name": name, "role": role, "key": key},
    )


@action("admin", "revoking an API key")
def revoke(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    revoke_key(viewer.project, form.get("name", ""))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/keys", status_code=303)


routes = [
    Route("/keys", page(keys), name="keys"),
    Route("/keys/create", create, methods=["POST"], name="create_key"),
    Route("/keys/revoke", revoke, methods=["POST"], name="revoke_key"),
]
