"""Endpoint wrappers shared by the pages: who is asking, the role an action needs, and errors.

A page is a function ``(request, viewer) -> Response`` that calls fti's public API. A plain
function runs in a worker thread (the catalog, Delta and DuckDB are synchronous); an ``async``
one (talking to the model server) runs on the event loop. An action (a POST that changes
something) is ``(request, viewer, form) -> Response`` and runs only after the CSRF token and the
viewer's role have been checked. Errors become pages (or fragments for htmx requests): an
``FtiError`` shows its message with its status, anything else a 500 without internals.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from fti.errors import FtiError
from fti.ui import session
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer

log = logging.getLogger("fti.ui")

Endpoint = Callable[["Request"], Awaitable["Response"]]


def error_response(request: Request, viewer: Viewer | None, exc: Exception) -> Response:
    """The page (or htmx fragment) for an error; only an FtiError's message is shown."""
    if isinstance(exc, FtiError):
        status, message, title = exc.http_status, exc.message, type(exc).__name__
    else:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        status, title = 500, "Internal error"
        message = f"internal error ({type(exc).__name__}); see the UI's log"
    template = "_error.html" if request.headers.get("hx-request") else "error.html"
    return render_page(request, viewer, template, status=status, title=title, message=message)


async def _call(handler: Callable[..., Any], *args: Any) -> Response:
    if inspect.iscoroutinefunction(handler):
        response: Response = await handler(*args)
        return response
    result: Response = await run_in_threadpool(handler, *args)
    return result


async def _viewer_or_response(request: Request) -> Viewer | Response:
    try:
        return await run_in_threadpool(session.viewer, request)
    except session.LoginRequired:
        return session.login_redirect(request)
    except FtiError as exc:
        return await run_in_threadpool(error_response, request, None, exc)


def page(handler: Callable[..., Any]) -> Endpoint:
    """A GET page: the viewer is resolved (or the user sent to log in) before ``handler`` runs."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        who = await _viewer_or_response(request)
        if not isinstance(who, session.Viewer):
            return who
        try:
            return await _call(handler, request, who)
        except Exception as exc:
            return await run_in_threadpool(error_response, request, who, exc)

    return endpoint


def action(role: str, what: str) -> Callable[[Callable[..., Any]], Endpoint]:
    """A POST that changes something: the CSRF token, then ``role`` (e.g. ``"writer"``), are required.

    Args:
        role: The least role allowed to do it.
        what: The action, for the refusal message (``"running a pipeline"``).
    """

    def wrap(handler: Callable[..., Any]) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                fields = await session.form(request)
                session.check_csrf(request, fields)
            except FtiError as exc:
                return await run_in_threadpool(error_response, request, None, exc)
            who = await _viewer_or_response(request)
            if not isinstance(who, session.Viewer):
                return who
            try:
                who.principal.require(role, what)
                return await _call(handler, request, who, fields)
            except Exception as exc:
                return await run_in_threadpool(error_response, request, who, exc)

        return endpoint

    return wrap
