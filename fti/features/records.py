"""The feature domain's catalog records: the only module that touches the feature tables.

Feature groups, their commits, feature views and training datasets live in the tables declared in
``fti.storage.metadata.tables.features`` and ``...feature_views``. Other domains (the scheduler's
new-data trigger, the registry's lineage) read them through the functions here, which take an open
SQLAlchemy connection (so a caller can use them inside its own transaction) and return plain
values or frozen records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from fti.storage.metadata.tables import feature_groups, feature_views, fg_commits, training_datasets

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class CommitRef:
    """A feature-group commit as a trigger sees it: its catalog position, size and versions."""

    id: int
    """Position in the project's commit sequence (increasing; a cursor can point at it)."""
    rows: int
    delta_version: int
    group_version: int


@dataclass(frozen=True)
class FeatureViewKey:
    """The catalog identity of a feature view version."""

    id: int
    name: str
    version: int


def last_commit_position(conn: Connection, project_id: int, group: str) -> int:
    """The position of the newest commit of any version of feature group ``group`` (0 if none)."""
    query = (
        select(func.max(fg_commits.c.id))
        .join(feature_groups, feature_groups.c.id == fg_commits.c.feature_group_id)
        .where(feature_groups.c.project_id == project_id, feature_groups.c.name == group)
    )
    return int(conn.execute(query).scalar() or 0)


def commits_after(
    conn: Connection, project_id: int, group: str, position: int, group_version: int | None = None
) -> list[CommitRef]:
    """Commits of feature group ``group`` (one version, or all) after ``position``, oldest first."""
    query = (
        select(
            fg_commits.c.id,
            fg_commits.c.rows_inserted,
            fg_commits.c.delta_version,
            feature_groups.c.version,
        )
        .join(feature_groups, feature_groups.c.id == fg_commits.c.feature_group_id)
        .where(
            feature_groups.c.project_id == project_id,
            feature_groups.c.name == group,
            fg_commits.c.id > position,
        )
        .order_by(fg_commits.c.id)
    )
    if group_version is not None:
        query = query.where(feature_groups.c.version == group_version)
    return [
        CommitRef(int(r.id), int(r.rows_inserted), int(r.delta_version), int(r.version))
        for r in conn.execute(query)
    ]


def find_view_key(conn: Connection, project_id: int, name: str, version: int) -> FeatureViewKey | None:
    """The identity of feature view ``name`` at ``version``, or None."""
    row = conn.execute(
        select(feature_views.c.id, feature_views.c.name, feature_views.c.version).where(
            feature_views.c.project_id == project_id,
            feature_views.c.name == name,
            feature_views.c.version == version,
        )
    ).first()
    return None if row is None else FeatureViewKey(int(row.id), str(row.name), int(row.version))


def training_dataset_numbers(conn: Connection, view_id: int) -> list[int]:
    """The training-dataset versions of a feature view, ascending."""
    query = select(training_datasets.c.version).where(training_datasets.c.feature_view_id == view_id)
    return sorted(int(v) for v in conn.execute(query).scalars())


def training_dataset_inputs(conn: Connection, view_id: int, version: int) -> dict[str, int] | None:
    """The input Delta versions ``{offline table: version}`` of a training dataset, or None."""
    found = conn.execute(
        select(training_datasets.c.input_versions).where(
            training_datasets.c.feature_view_id == view_id, training_datasets.c.version == version
        )
    ).scalar_one_or_none()
    return None if found is None else {str(k): int(v) for k, v in dict(found).items()}
