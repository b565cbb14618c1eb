"""Logging in with an API key, logging out, and switching project (see :mod:`fti.ui.session`)."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse
from starlette.routing import Route

from fti.errors import FtiError, NotFoundError
from fti.serving.auth import hash_key
from fti.ui import session
from fti.ui.endpoints import action, error_response
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer
    from fti.ui.state import UiState


async def login(request: Request) -> Response:
    try:
        return await _login(request)
    except FtiError as exc:
        return await run_in_threadpool(error_response, request, None, exc)


async def _login(request: Request) -> Response:
    state: UiState = request.app.state.ui
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    error, status, next_url = None, 200, request.query_params.get("next")
    if request.method == "POST":
        fields = await session.form(request)
        next_url = fields.get("next")
        session.check_csrf(request, fields)
        key = fields.get("key", "").strip()
        found = await run_in_threadpool(state.find_key, hash_key(key)) if key else None
        if found is None:
            error, status = "invalid or revoked API key", 401
            await asyncio.sleep(0.2)  # slows guessing; keys are 256-bit random: belt and braces
        else:
            request.session.clear()  # a new session: nothing survives from before the login
            request.session.update(
                key=hash_key(key), project=found, csrf=secrets.token_urlsafe(32), at=int(time.time())
            )
            return RedirectResponse(session.safe_next(request, next_url), status_code=303)
    elif not await run_in_threadpool(state.auth_enabled_anywhere):
        return RedirectResponse(session.base(request) + "/", status_code=303)
    return await run_in_threadpool(
        lambda: render_page(
            request,
            None,
            "login.html",
            status=status,
            error=error,
            next=session.safe_next(request, next_url),
            csrf=request.session["csrf"],
        )
    )


async def logout(request: Request) -> Response:
    try:
        session.check_csrf(request, await session.form(request))
    except FtiError as exc:
        return await run_in_threadpool(error_response, request, None, exc)
    request.session.clear()
    return RedirectResponse(session.base(request) + "/login", status_code=303)


@action("reader", "switching project")
def switch_project(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    target = form.get("project", "")
    if target not in viewer.projects:
        raise NotFoundError(f"project {target!r} does not exist or your key does not open it")
    request.session["project"] = target
    return RedirectResponse(session.base(request) + "/", status_code=303)


routes = [
    Route("/login", login, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/project", switch_project, methods=["POST"], name="switch_project"),
]
