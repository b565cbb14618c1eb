"""Listing and searching models and model versions (``mr.search_models``, ``mr.search_model_versions``).

A search matches a case-insensitive substring of the model name, a version's description or a
version's tag; ``tag=`` keeps only versions with exactly that tag. Versions sort by version, by
registration time or by a metric (``order_by="metrics.auc desc"``, MLflow-style). Pages are cut in
the catalog query, so a model with 1,000 versions lists as fast as one with 10.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fti import tags
from fti._names import check_name
from fti.errors import NotFoundError, ValidationError
from fti.paging import Page, check_page, check_text
from fti.registry import records
from fti.registry.lineage import resolve_feature_view
from fti.registry.records import ModelInfo

if TYPE_CHECKING:
    from fti.project import Project
    from fti.registry.model_version import ModelVersion

__all__ = ["ModelInfo", "parse_order", "search_model_versions", "search_models"]


def parse_order(order_by: str | None) -> tuple[str, bool]:
    """``"version"``, ``"created_at"`` or ``"metrics.<name>"``, optionally followed by ``asc`` or
    ``desc`` (default ``desc``) -> ``(key, descending)``. None: newest version first."""
    if order_by is None:
        return "version", True
    parts = order_by.split() if isinstance(order_by, str) else []
    if (
        len(parts) in (1, 2)
        and (parts[0] in ("version", "created_at") or (parts[0].startswith("metrics.") and len(parts[0]) > 8))
        and (len(parts) == 1 or parts[1].lower() in ("asc", "desc"))
    ):
        return parts[0], len(parts) == 1 or parts[1].lower() == "desc"
    raise ValidationError(
        f"invalid order_by {order_by!r}: use 'version', 'created_at' or 'metrics.<name>', optionally "
        "followed by 'asc' or 'desc' (e.g. 'metrics.auc desc')"
    )


def search_models(project: Project, query: str = "", *, offset: int = 0, limit: int = 50) -> Page[ModelInfo]:
    """Models whose name, or any version's description or tag, contains ``query``, by name."""
    text = check_text(query)
    offset, limit = check_page(offset, limit)
    with project.backends.catalog.connect() as conn:
        by_tag = tags.find(project, "model_version", text, conn=conn) if text else []
        infos, total = records.search_models(
            conn, project.id, text=text, also_version_ids=by_tag, offset=offset, limit=limit
        )
    return Page(infos, total, offset, limit)


def search_model_versions(
    project: Project,
    query: str = "",
    *,
    name: str | None = None,
    feature_view: tuple[str, int] | None = None,
    tag: str | None = None,
    order_by: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[ModelVersion]:
    """Model versions matching ``query`` (see the module docstring), one page at a time; the
    versions are detached (the registry facade binds them to itself).

    Args:
        name: Only versions of this model.
        feature_view: Only versions trained from this feature view, as ``(name, version)``.
        tag: Only versions with exactly this tag.

    Raises:
        NotFoundError: ``name`` is not a model, or ``feature_view`` not a view, of the project.
    """
    text = check_text(query)
    offset, limit = check_page(offset, limit)
    order = parse_order(order_by)
    if tag is not None:
        tags.check_tag(tag)
    with project.backends.catalog.connect() as conn:
        by_tag = tags.find(project, "model_version", text, conn=conn) if text else []
        only = None if tag is None else tags.find(project, "model_version", tag, exact=True, conn=conn)
        if (
            name is not None
            and records.model_id(conn, project.id, check_name(name, "model"), create=False) is None
        ):
            raise NotFoundError(f"model {name!r} not found in project {project.name!r}")
        view_id = None if feature_view is None else resolve_feature_view(conn, project, feature_view).id
        found, total = records.search_versions(
            conn,
            project.id,
            text=text,
            name=name,
            feature_view_id=view_id,
            also_ids=by_tag,
            only_ids=only,
            order_by=order,
            offset=offset,
            limit=limit,
        )
    return Page(found, total, offset, limit)


def best_version(versions: list[ModelVersion], name: str, metric: str, direction: str) -> ModelVersion:
    """The version with the highest (``max``) or lowest (``min``) ``metric``; the newest on a tie
    for ``max``, the oldest for ``min``.

    Raises:
        ValidationError: ``direction`` is neither ``max`` nor ``min``.
        NotFoundError: no version has the metric.
    """
    if direction not in ("max", "min"):
        raise ValidationError(f"direction must be 'max' or 'min', got {direction!r}")
    candidates = [mv for mv in versions if metric in mv.metrics]
    if not candidates:
        raise NotFoundError(f"no version of model {name!r} has metric {metric!r}")
    pick = max if direction == "max" else min
    return pick(
        candidates, key=lambda mv: (mv.metrics[metric], mv.version if direction == "max" else -mv.version)
    )
