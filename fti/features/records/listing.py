"""Listing and search queries over the feature tables (``fs.search_*``, the web UI).

Part of the feature domain's records (:mod:`fti.features.records`, whose ``__init__`` holds the
rest): the only code that touches the feature tables. Each function takes an open connection
(the caller reads the rows and their tags in one go) and returns frozen records; every page is a
fixed number of queries (rows, count, commit activity or dataset counts), whatever the catalog's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, func, or_, select

from fti.storage.metadata.tables import feature_groups, feature_views, fg_commits, training_datasets
from fti.types import Feature

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class FeatureGroupInfo:
    """A feature group version as listings show it: its definition and commit activity, read from
    the catalog alone (no offline-store access)."""

    id: int
    name: str
    version: int
    description: str
    primary_key: list[str]
    event_time: str | None
    online_enabled: bool
    features: list[Feature] | None
    created_at: datetime
    commits: int
    """Number of recorded commits (inserts and schema changes)."""
    last_commit_at: datetime | None
    rows_inserted: int
    """Rows written by all inserts (upserts of existing keys count again)."""
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FeatureInfo:
    """One feature (column) of a feature group version, as feature search finds it."""

    group: str
    group_version: int
    name: str
    dtype: str


@dataclass(frozen=True)
class FeatureViewInfo:
    """A feature view version as listings show it (without loading its query's feature groups)."""

    id: int
    name: str
    version: int
    description: str
    labels: list[str]
    transformations: dict[str, str]
    groups: list[tuple[str, int]]
    """``(name, version)`` of each feature group of the query, the spine first."""
    created_at: datetime
    training_datasets: int
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CommitEntry:
    """A commit of some feature group of the project (the project's recent activity)."""

    group: str
    group_version: int
    version: int
    committed_at: datetime
    operation: str
    rows_inserted: int
    validation_status: str


def _text_match(columns: Sequence[Any], text: str, also_ids: Sequence[int], id_column: Any) -> Any:
    """Rows where any of ``columns`` contains ``text`` (case-insensitive) or whose id is listed."""
    conditions = [func.lower(c).contains(text, autoescape=True) for c in columns]
    if also_ids:
        conditions.append(id_column.in_(list(also_ids)))
    return or_(*conditions)


def search_groups(
    conn: Connection,
    project_id: int,
    *,
    text: str,
    also_ids: Sequence[int] = (),
    only_ids: Sequence[int] | None = None,
    offset: int,
    limit: int,
) -> tuple[list[FeatureGroupInfo], int]:
    """A page of the project's feature groups by name then version, and how many match.

    Args:
        text: Lowercase text the name or description must contain ("" matches all).
        also_ids: Groups that match anyway (e.g. by tag).
        only_ids: Restrict to these groups (e.g. those with a given tag).
    """
    fg = feature_groups.c
    where = [fg.project_id == project_id]
    if text:
        where.append(_text_match([fg.name, fg.description], text, also_ids, fg.id))
    if only_ids is not None:
        where.append(fg.id.in_(list(only_ids)))
    total = int(conn.execute(select(func.count()).select_from(feature_groups).where(*where)).scalar_one())
    if not limit or offset >= total:
        return [], total
    columns = (fg.id, fg.name, fg.version, fg.description, fg.primary_key, fg.event_time)
    query = (
        select(*columns, fg.online_enabled, fg.features, fg.created_at)
        .where(*where)
        .order_by(fg.name, fg.version)
        .offset(offset)
        .limit(limit)
    )
    rows = conn.execute(query).mappings().all()
    activity = _commit_activity(conn, [int(r["id"]) for r in rows])
    infos = []
    for r in rows:
        commits, last_at, written = activity.get(int(r["id"]), (0, None, 0))
        infos.append(
            FeatureGroupInfo(
                id=int(r["id"]),
                name=r["name"],
                version=int(r["version"]),
                description=r["description"] or "",
                primary_key=list(r["primary_key"]),
                event_time=r["event_time"],
                online_enabled=bool(r["online_enabled"]),
                features=None if r["features"] is None else [Feature.from_dict(f) for f in r["features"]],
                created_at=r["created_at"],
                commits=commits,
                last_commit_at=last_at,
                rows_inserted=written,
            )
        )
    return infos, total


def _commit_activity(conn: Connection, group_ids: list[int]) -> dict[int, tuple[int, datetime | None, int]]:
    """``{group id: (commits, last commit time, rows inserted)}`` in one query."""
    if not group_ids:
        return {}
    c = fg_commits.c
    query = (
        select(c.feature_group_id, func.count(), func.max(c.committed_at), func.sum(c.rows_inserted))
        .where(c.feature_group_id.in_(group_ids))
        .group_by(c.feature_group_id)
    )
    found: dict[int, tuple[int, datetime | None, int]] = {}
    for group_id, n, last, rows in conn.execute(query):  # max() keeps the column's tz-aware type
        found[int(group_id)] = (int(n), last, int(rows or 0))
    return found


def search_features(conn: Connection, project_id: int, text: str) -> list[FeatureInfo]:
    """Features whose name contains ``text`` (lowercase), by group, version and position."""
    fg = feature_groups.c
    query = (
        select(fg.name, fg.version, fg.features)
        .where(fg.project_id == project_id, fg.features.is_not(None))
        .order_by(fg.name, fg.version)
    )
    if text:  # a cheap textual prefilter; names are matched exactly below
        query = query.where(func.lower(cast(fg.features, String)).contains(text, autoescape=True))
    found = []
    for name, version, features in conn.execute(query):
        for feature in features or []:
            if text in str(feature["name"]).lower():
                found.append(FeatureInfo(name, int(version), str(feature["name"]), str(feature["dtype"])))
    return found


def search_views(
    conn: Connection,
    project_id: int,
    *,
    text: str,
    also_ids: Sequence[int] = (),
    only_ids: Sequence[int] | None = None,
    group: tuple[str, int] | None = None,
    offset: int,
    limit: int,
) -> tuple[list[FeatureViewInfo], int]:
    """A page of the project's feature views by name then version, and how many match.

    Args:
        text, also_ids, only_ids: As in :func:`search_groups`.
        group: Only views whose query reads this feature group ``(name, version)``.
    """
    fv = feature_views.c
    where = [fv.project_id == project_id]
    if text:
        where.append(_text_match([fv.name, fv.description], text, also_ids, fv.id))
    if only_ids is not None:
        where.append(fv.id.in_(list(only_ids)))
    columns = (fv.id, fv.name, fv.version, fv.description, fv.labels, fv.transformations, fv.query)
    query = select(*columns, fv.created_at).where(*where).order_by(fv.name, fv.version)
    if group is None:
        total = int(conn.execute(select(func.count()).select_from(feature_views).where(*where)).scalar_one())
        rows = list(conn.execute(query.offset(offset).limit(limit)).mappings()) if limit else []
    else:  # the query is JSON: prefilter on the group's name in SQL, match exactly here
        candidates = conn.execute(
            query.where(cast(fv.query, String).contains(group[0], autoescape=True))
        ).mappings()
        matching = [r for r in candidates if group in _view_groups(r["query"])]
        total, rows = len(matching), matching[offset : offset + limit]
    counts = _dataset_counts(conn, [int(r["id"]) for r in rows])
    return [
        FeatureViewInfo(
            id=int(r["id"]),
            name=r["name"],
            version=int(r["version"]),
            description=r["description"] or "",
            labels=list(r["labels"]),
            transformations=dict(r["transformations"]),
            groups=_view_groups(r["query"]),
            created_at=r["created_at"],
            training_datasets=counts.get(int(r["id"]), 0),
        )
        for r in rows
    ], total


def _view_groups(query: dict[str, Any]) -> list[tuple[str, int]]:
    return [(str(p["group"]), int(p["version"])) for p in query.get("parts", [])]


def _dataset_counts(conn: Connection, view_ids: list[int]) -> dict[int, int]:
    if not view_ids:
        return {}
    td = training_datasets.c
    query = (
        select(td.feature_view_id, func.count())
        .where(td.feature_view_id.in_(view_ids))
        .group_by(td.feature_view_id)
    )
    return {int(view_id): int(n) for view_id, n in conn.execute(query)}


def recent_commits(conn: Connection, project_id: int, limit: int) -> list[CommitEntry]:
    """The project's latest ``limit`` feature-group commits, newest first."""
    c, fg = fg_commits.c, feature_groups.c
    query = (
        select(fg.name, fg.version, c.delta_version, c.committed_at, c.operation, c.rows_inserted)
        .add_columns(c.validation_status)
        .join(feature_groups, fg.id == c.feature_group_id)
        .where(fg.project_id == project_id)
        .order_by(c.id.desc())
        .limit(limit)
    )
    return [
        CommitEntry(str(n), int(v), int(dv), at, str(op), int(rows), str(status))
        for n, v, dv, at, op, rows, status in conn.execute(query)
    ]
