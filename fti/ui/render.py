"""Rendering: the Jinja2 environment (autoescaping every value), filters, and the page shell.

Every user-provided string reaches HTML through Jinja2's autoescaping; values for scripts travel
as JSON in ``<script type="application/json">`` blocks through the ``tojson`` filter, which
escapes ``<``, ``>``, ``&`` and ``'``. No template marks user data ``|safe``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

from fti.ui import pages

if TYPE_CHECKING:
    import jinja2
    from starlette.requests import Request

    from fti.ui.session import Viewer

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template is HTML
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the route tests, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(dt=format_time, ago=ago, num=number, dur=duration, pct=percent, cell=cell)
    return env


def format_time(value: datetime | None) -> str:
    if value is None:
        return "\u2013"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (datetime.now(UTC) - value).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.0f} {unit} ago" if seconds > 0 else f"in {-seconds / size:.0f} {unit}"
    return "just now" if seconds >= 0 else "in a moment"


def number(value: Any) -> str:
    """Numbers for tables: integers with separators, floats with 4 significant digits."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def cell(value: Any) -> str:
    """A stored value in a table of rows."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return number(value)
    if value is None:
        return "null"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "\u2013"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value * 100:.1f}%"


def query_string(request: Request, **changes: Any) -> str:
    """The current query string with ``changes`` applied (None removes a parameter)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return "?" + urlencode(params) if params else "?"


def render_page(
    request: Request, viewer: Viewer | None, template: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` with the shell's context (user, project, navigation, CSRF token)."""
    prefix = str(request.scope.get("root_path", ""))
    shell = {
        "request": request,
        "viewer": viewer,
        "base": prefix,
        "nav": pages.NAVIGATION,
        "section": context.pop("section", None),
        "csrf": viewer.csrf if viewer else context.pop("csrf", ""),
        "qs": lambda **changes: query_string(request, **changes),
    }
    html = environment().get_template(template).render({**shell, **context})
    return HTMLResponse(html, status_code=status)
