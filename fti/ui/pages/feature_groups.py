"""Feature groups: the searchable list, and one version's schema, commits (time travel to any
commit), statistics with histograms and top categories, validation reports and a paged sample."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from fti.errors import NotFoundError, ValidationError
from fti.ui.endpoints import page
from fti.ui.render import render_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer

PAGE = 50
SAMPLE_ROWS = 25
COMMITS_SHOWN = 50


def int_param(request: Request, name: str, default: int | None = None, *, minimum: int = 0) -> int | None:
    """An integer query parameter (ValidationError, shown as a 400 page, for anything else)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdecimal() or int(raw) < minimum or len(raw) > 12:
        raise ValidationError(f"query parameter {name!r} must be an integer >= {minimum}, got {raw!r}")
    return int(raw)


def version_param(raw: str, what: str) -> int:
    """A version from a URL path segment (404 for anything but a positive integer)."""
    if not raw.isdecimal() or int(raw) < 1 or len(raw) > 12:
        raise NotFoundError(f"{what} version {raw!r} does not exist: versions are integers >= 1")
    return int(raw)


def list_groups(request: Request, viewer: Viewer) -> Response:
    q = request.query_params.get("q", "")
    tag = request.query_params.get("tag") or None
    found = viewer.project.feature_store.search_feature_groups(
        q, tag=tag, offset=int_param(request, "offset", 0) or 0, limit=PAGE
    )
    return render_page(
        request, viewer, "feature_groups.html", section="feature_groups", page=found, q=q, tag=tag
    )


def histogram(stats: dict[str, Any]) -> dict[str, Any] | None:
    """Chart data of a numeric column's histogram (bin labels and counts), or None."""
    hist = stats.get("histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if not counts:
        return None
    labels = [f"{edges[i]:.4g} \u2013 {edges[i + 1]:.4g}" for i in range(min(len(counts), len(edges) - 1))]
    return {"kind": "bars", "labels": labels, "values": counts[: len(labels)]}


def group_detail(request: Request, viewer: Viewer) -> Response:
    fs = viewer.project.feature_store
    name = request.path_params["name"]
    fg = fs.get_feature_group(name, version_param(request.path_params["version"], "feature group"))
    as_of = int_param(request, "as_of")
    commits = fg.commits()
    if as_of is not None and as_of not in {c.version for c in commits}:
        raise NotFoundError(f"feature group {name!r} has no commit {as_of} (see its commit list)")
    statistics: dict[str, dict[str, Any]] = {}
    if commits:
        statistics = fg.statistics(as_of)
    offset = int_param(request, "offset", 0) or 0
    rows = fg.read_page(offset=offset, limit=SAMPLE_ROWS, as_of=as_of)
    charts = {column: histogram(stats) for column, stats in statistics.items()}
    reports = [c for c in reversed(commits) if c.validation_report]
    return render_page(
        request,
        viewer,
        "feature_group.html",
        section="feature_groups",
        fg=fg,
        tags=fg.tags,
        as_of=as_of,
        commits=list(reversed(commits))[:COMMITS_SHOWN],
        commit_count=len(commits),
        statistics=statistics,
        charts=charts,
        reports=reports[:10],
        rows=rows,
        columns=[f.name for f in fg.features or []],
        views=fs.search_feature_views(feature_group=(fg.name, fg.version), limit=20),
    )


routes = [
    Route("/feature-groups", page(list_groups), name="feature_groups"),
    Route("/feature-groups/{name}/{version}", page(group_detail), name="feature_group"),
]
