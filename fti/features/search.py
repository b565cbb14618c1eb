"""Listing and searching feature groups, features and feature views (``fs.search_*``, the web UI).

A search matches a case-insensitive substring of the name, the description or a tag; ``tag=``
keeps only objects with exactly that tag. Results are paginated in the catalog query, and each
page is read with a fixed number of queries (rows, commit activity, tags), so listing stays fast
with thousands of feature groups.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from fti import tags
from fti._names import check_version
from fti.errors import ValidationError
from fti.features.records import listing as records
from fti.features.records.listing import CommitEntry, FeatureGroupInfo, FeatureInfo, FeatureViewInfo
from fti.paging import Page, check_page, check_text

if TYPE_CHECKING:
    from fti.features._project import FeatureProject as Project
    from fti.storage.metadata.base import Connection

__all__ = [
    "CommitEntry",
    "FeatureGroupInfo",
    "FeatureInfo",
    "FeatureViewInfo",
    "recent_commits",
    "search_feature_groups",
    "search_feature_views",
    "search_features",
]


def _tag_filter(
    project: Project, conn: Connection, kind: str, text: str, tag: str | None
) -> tuple[list[int], list[int] | None]:
    """Ids matching ``text`` by a tag, and the only ids allowed by an exact ``tag`` (None: all)."""
    by_tag = tags.find(project, kind, text, conn=conn) if text else []
    only = None if tag is None else tags.find(project, kind, tag, exact=True, conn=conn)
    return by_tag, only


def search_feature_groups(
    project: Project, query: str = "", *, tag: str | None = None, offset: int = 0, limit: int = 50
) -> Page[FeatureGroupInfo]:
    """Feature group versions whose name, description or a tag contains ``query``, by name then version."""
    text = check_text(query)
    offset, limit = check_page(offset, limit)
    if tag is not None:
        tags.check_tag(tag)
    with project.backends.catalog.connect() as conn:  # one connection: rows, activity and tags
        by_tag, only = _tag_filter(project, conn, "feature_group", text, tag)
        infos, total = records.search_groups(
            conn, project.id, text=text, also_ids=by_tag, only_ids=only, offset=offset, limit=limit
        )
        found = tags.tags_of_many(project, "feature_group", [i.id for i in infos], conn=conn)
    return Page([replace(i, tags=found[i.id]) for i in infos], total, offset, limit)


def search_features(project: Project, query: str, *, offset: int = 0, limit: int = 50) -> Page[FeatureInfo]:
    """Features (columns of any feature group version) whose name contains ``query``."""
    text = check_text(query)
    offset, limit = check_page(offset, limit)
    with project.backends.catalog.connect() as conn:
        found = records.search_features(conn, project.id, text)
    return Page(found[offset : offset + limit], len(found), offset, limit)


def search_feature_views(
    project: Project,
    query: str = "",
    *,
    tag: str | None = None,
    feature_group: tuple[str, int] | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[FeatureViewInfo]:
    """Feature view versions whose name, description or a tag contains ``query``, by name then version.

    Args:
        feature_group: Only views that read this feature group, as ``(name, version)``.
    """
    text = check_text(query)
    offset, limit = check_page(offset, limit)
    if feature_group is not None:
        if not isinstance(feature_group, tuple) or len(feature_group) != 2:
            raise ValidationError(f"feature_group must be a (name, version) tuple, got {feature_group!r}")
        check_version(feature_group[1], "feature group")
    if tag is not None:
        tags.check_tag(tag)
    with project.backends.catalog.connect() as conn:
        by_tag, only = _tag_filter(project, conn, "feature_view", text, tag)
        infos, total = records.search_views(
            conn,
            project.id,
            text=text,
            also_ids=by_tag,
            only_ids=only,
            group=feature_group,
            offset=offset,
            limit=limit,
        )
        found = tags.tags_of_many(project, "feature_view", [i.id for i in infos], conn=conn)
    return Page([replace(i, tags=found[i.id]) for i in infos], total, offset, limit)


def recent_commits(project: Project, limit: int = 10) -> list[CommitEntry]:
    """The project's latest feature-group commits (any group), newest first."""
    _, limit = check_page(0, limit)
    with project.backends.catalog.connect() as conn:
        return records.recent_commits(conn, project.id, limit)
