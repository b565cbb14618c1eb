"""Who is looking: login with an API key, signed session cookies, CSRF tokens, logout.

The session is a cookie signed with the UI's secret key (Starlette's ``SessionMiddleware``,
itsdangerous), ``HttpOnly`` and ``SameSite=Strict`` (and ``Secure`` behind TLS). It holds the
SHA-256 of the key the user logged in with (never the key), the project being viewed and a CSRF
token. Every request re-checks that digest against the project's keys, so revoking a key ends
its sessions within seconds. Every state-changing request must carry the session's CSRF token
(a form field or the ``X-CSRF-Token`` header htmx sends) and, when the browser says where it
comes from, an ``Origin`` of this server.

With no key configured for a project the UI is open, but only to clients on the loopback
interface, and every page says so.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fti.errors import NotFoundError, PermissionDeniedError, ValidationError
from fti.serving.auth import OPEN, Principal

if TYPE_CHECKING:
    from fti.config import Settings
    from fti.project import Project
    from fti.ui.state import UiState

COOKIE = "fti_ui_session"
MAX_AGE_S = 12 * 3600
_MAX_FORM_BYTES = 64 * 1024


class LoginRequired(Exception):
    """No valid session for a project that has API keys."""


class LoopbackOnly(PermissionDeniedError):
    """The UI runs without API keys and the client is not on the loopback interface."""

    code = "loopback_only"


class CsrfError(PermissionDeniedError):
    """A state-changing request without the session's CSRF token (or from another origin)."""

    code = "csrf_failed"


@dataclass(frozen=True)
class Viewer:
    """The request's user: the project they look at, their role and the session's CSRF token."""

    project: Project
    principal: Principal
    auth: bool
    """Whether the project has API keys (False: open on loopback, shown in a banner)."""
    csrf: str
    projects: list[str] = field(default_factory=list)
    """The projects this user can switch to."""


def secret_key(settings: Settings) -> str:
    """The key that signs session cookies: the setting, else one kept in ``$FTI_HOME/ui/secret_key``."""
    if settings.ui_secret_key:
        return settings.ui_secret_key
    path = Path(settings.home) / "ui" / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # created once, readable by the owner only; several workers may race here
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def base(request: Request) -> str:
    """The UI's path prefix (``/ui`` when mounted in ``fti serve``, else empty)."""
    return str(request.scope.get("root_path", ""))


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def viewer(request: Request) -> Viewer:
    """The request's viewer (blocking: reads the catalog; call from a worker thread).

    Raises:
        LoginRequired: the project has keys and the session has no valid one.
        LoopbackOnly: the project has no keys and the client is not local.
    """
    state: UiState = request.app.state.ui
    session = request.session
    csrf = session.get("csrf")
    if not isinstance(csrf, str):
        csrf = session["csrf"] = secrets.token_urlsafe(32)
    name = session.get("project") or state.default_project
    try:
        project = state.project(name)
    except NotFoundError:  # the project was deleted since: back to the default one
        session.pop("project", None)
        name = state.default_project
        project = state.project(name)
    checker = state.checker(name)
    if not checker.enabled:
        if not _is_loopback(request):
            raise LoopbackOnly(
                "this fti UI has no API keys configured, so it only answers on the loopback interface; "
                "create a key (fti keys create NAME --role reader) to open it to other machines"
            )
        return Viewer(project, OPEN, False, csrf, state.projects_open_to(None))
    digest = session.get("key")
    principal = checker.principal(digest) if isinstance(digest, str) else None
    if principal is None:
        raise LoginRequired()
    return Viewer(project, principal, True, csrf, state.projects_open_to(digest))


async def form(request: Request) -> dict[str, str]:
    """The request's URL-encoded form (the UI's forms have no file uploads)."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise ValidationError(f"the form is larger than {_MAX_FORM_BYTES} bytes")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def check_csrf(request: Request, fields: dict[str, str]) -> None:
    """Raise CsrfError unless the request carries this session's CSRF token and comes from here."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        expected = f"{request.url.scheme}://{request.url.netloc}"
        if origin != expected:
            raise CsrfError(f"refused a request from another origin ({origin}); use the UI's own pages")
    token = fields.get("csrf_token") or request.headers.get("x-csrf-token") or ""
    stored = request.session.get("csrf")
    if not isinstance(stored, str) or not hmac.compare_digest(token.encode(), stored.encode()):
        raise CsrfError("missing or invalid CSRF token: reload the page and try again")


def safe_next(request: Request, target: str | None) -> str:
    """A redirect target inside the UI (never another site: no scheme, host or ``//``)."""
    prefix = base(request)
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return prefix + "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return prefix + "/"
    return target if target.startswith(prefix + "/") or not prefix else prefix + "/"


def login_redirect(request: Request) -> Response:
    """Where an unauthenticated request goes: the login page (htmx: a client-side redirect)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = base(request) + "/login?" + urlencode({"next": target})
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


__all__ = ["COOKIE", "CsrfError", "LoginRequired", "Viewer", "check_csrf", "form", "login_redirect", "viewer"]
