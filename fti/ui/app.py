"""The web UI app: ``fti ui`` serves it alone; ``fti serve`` mounts it under ``/ui``.

Server-rendered pages (Starlette + Jinja2) with htmx for partial updates and uPlot for charts,
all shipped in ``fti/ui/static`` (no CDN; versions and licenses in ``static/VENDORED.md``). The
pages call fti's public Python API only. Every response carries a strict Content-Security-Policy
(scripts from this server only, no inline script, no eval) and a ``Server-Timing`` header with
the server-side time spent on it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from fti.ui import pages, session
from fti.ui.state import UiState

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from fti.project import Project

STATIC = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
)


class SecurityHeaders:
    """Adds the security headers (unless a route set its own) and ``Server-Timing`` to responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        static = scope["path"].startswith(str(scope.get("root_path", "")) + "/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS:
                    if name not in headers and not (static and name == "cache-control"):
                        headers[name] = value
                headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _not_found(request: Request, exc: Exception) -> Response:
    from starlette.concurrency import run_in_threadpool

    from fti.errors import NotFoundError
    from fti.ui.endpoints import error_response

    missing = NotFoundError(f"no page at {request.url.path}")
    return await run_in_threadpool(error_response, request, None, missing)


def create_app(
    project: Project,
    *,
    server_app: ASGIApp | None = None,
    mount_path: str = "",
    secure_cookies: bool = False,
) -> Starlette:
    """The web UI for ``project`` (and the other projects of its catalog).

    Args:
        project: The default project; its settings open the others. The caller keeps owning it.
        server_app: The model server app this UI is mounted in (predictions, live figures and
            the repository index go to it in process); None to find a running ``fti serve``.
        mount_path: Where the UI is mounted (``"/ui"``): the session cookie's path.
        secure_cookies: Mark the session cookie ``Secure`` (serve the UI over HTTPS).
    """
    from fti.ui.serverlink import InProcessLink

    state = UiState(
        project,
        server=None if server_app is None else InProcessLink(server_app),
        secure_cookies=secure_cookies,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session.secret_key(project.settings),
            session_cookie=session.COOKIE,
            max_age=session.MAX_AGE_S,
            path=mount_path or "/",
            same_site="strict",
            https_only=secure_cookies,
        ),
    ]
    routes = [
        *pages.routes(),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={404: _not_found}
    )
    app.state.ui = state
    return app


def mount(server_app: Starlette, project: Project, path: str = "/ui") -> None:
    """Mount the UI under ``path`` of the model server app (``fti serve``)."""
    server_app.mount(path, create_app(project, server_app=server_app, mount_path=path))
