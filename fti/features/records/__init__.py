"""The feature domain's catalog records: with :mod:`.listing` (the listing and search queries of
the UI and ``fs.search_*``), the only code that touches the feature tables.

Feature groups, their commits, feature views and training datasets live in the tables declared in
``fti.storage.metadata.tables.features`` and ``...feature_views``. This module writes their SQL
once (for SQLite and PostgreSQL alike) and turns rows into the frozen records below; the rest of
``fti.features`` calls it with the project's :class:`~fti.storage.metadata.base.Catalog`, and
each function runs in its own transaction.

Other domains (the scheduler's new-data trigger, the registry's lineage) read through the
functions at the end, which take an open SQLAlchemy connection so a caller can use them inside
its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.features.records.commits import CommitInfo as CommitInfo  # the commit history lives there
from fti.features.records.commits import Write as Write
from fti.features.records.commits import advance_statistics_state as advance_statistics_state
from fti.features.records.commits import begin_write as begin_write
from fti.features.records.commits import commit_extent as commit_extent
from fti.features.records.commits import commit_statistics as commit_statistics
from fti.features.records.commits import end_writes as end_writes
from fti.features.records.commits import latest_versions as latest_versions
from fti.features.records.commits import list_commits as list_commits
from fti.features.records.commits import list_writes as list_writes
from fti.features.records.commits import record_commit as record_commit
from fti.features.records.commits import save_statistics_state as save_statistics_state
from fti.features.records.commits import statistics_state as statistics_state
from fti.storage.metadata.tables import (
    feature_groups,
    feature_views,
    fg_commits,
    fg_statistics_state,
    training_datasets,
)
from fti.storage.metadata.tables._base import utcnow
from fti.types import Feature

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import Connection, RowMapping

    from fti.storage.metadata.base import Catalog

SPLITS = ("train", "validation", "test")


# --- records --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureGroupMeta:
    """The catalog record of a feature group."""

    id: int
    name: str
    version: int
    primary_key: list[str]
    event_time: str | None
    online_enabled: bool
    description: str
    features: list[Feature] | None
    expectation_suite: dict[str, Any] | None
    table_name: str
    created_at: datetime
    embedding_index: dict[str, Any] | None = None
    """``{"column": ..., "metric": ...}`` of the group's embedding index, or None."""
    event_time_unit: str | None = None
    """``s``, ``ms``, ``us`` or ``ns``: what integer event times count (None: detected)."""
    external: dict[str, Any] | None = None
    """An external group's source and query (see :mod:`fti.features.external`); None otherwise."""


@dataclass(frozen=True)
class FeatureViewMeta:
    """The catalog record of a feature view."""

    id: int
    name: str
    version: int
    description: str
    query: dict[str, Any]
    labels: list[str]
    transformations: dict[str, str]
    created_at: datetime
    on_demand: list[dict[str, Any]] = field(default_factory=list)
    """Records of the on-demand functions (import path, source sha256, inputs, outputs, drop)."""
    request_fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingDataset:
    """The catalog record of a training-dataset version."""

    version: int
    description: str
    start_time: datetime | None
    end_time: datetime | None
    split: dict[str, Any]
    """``{"kind": "none" | "random" | "time", ...}`` with the sizes, seed or start times used."""
    input_versions: dict[str, int | None]
    """The Delta version read from each input group's offline table (None: the group was empty)."""
    transformation_stats: dict[str, dict[str, Any]]
    row_counts: dict[str, int]
    table_name: str
    table_version: int
    created_at: datetime

    @property
    def splits(self) -> list[str]:
        return [s for s in SPLITS if s in self.row_counts]

    def __repr__(self) -> str:
        from fti._display import short_repr

        return short_repr(
            "TrainingDataset", version=self.version, split=self.split["kind"], rows=self.row_counts
        )

    def _repr_html_(self) -> str:
        from fti._display import Card

        card = Card("TrainingDataset", f"version {self.version}")
        card.fields = [
            ("split", self.split),
            ("rows", self.row_counts),
            ("time range", f"{self.start_time or '…'} to {self.end_time or '…'}"),
            ("description", self.description),
            ("created", self.created_at),
        ]
        card.tables.append(
            (
                "input versions",
                ["offline table", "Delta version"],
                [[t, v] for t, v in self.input_versions.items()],
            )
        )
        card.tables.append(
            (
                "fitted transformations",
                ["feature", "statistics"],
                [[f, s] for f, s in self.transformation_stats.items()],
            )
        )
        return card.html()


# --- feature groups -------------------------------------------------------------------------------
def insert_feature_group(catalog: Catalog, project_id: int, values: Mapping[str, Any]) -> bool:
    """Create a feature group row from ``values`` (its columns except the ids and creation time).

    Returns False when the (project, name, version) exists already, e.g. created concurrently.
    """
    try:
        with catalog.engine.begin() as conn:
            conn.execute(insert(feature_groups).values(project_id=project_id, created_at=utcnow(), **values))
    except SqlIntegrityError:
        return False
    return True


def find_feature_group(
    catalog: Catalog, project_id: int, name: str, version: int | None
) -> FeatureGroupMeta | None:
    """Feature group ``name`` at ``version`` (None = the latest version), or None."""
    query = select(feature_groups).where(
        feature_groups.c.project_id == project_id, feature_groups.c.name == name
    )
    if version is None:
        query = query.order_by(feature_groups.c.version.desc()).limit(1)
    else:
        query = query.where(feature_groups.c.version == version)
    with catalog.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else _group(row)


def list_feature_groups(
    catalog: Catalog, project_id: int, *, online_only: bool = False
) -> list[FeatureGroupMeta]:
    """The project's feature groups (only the online-enabled ones with ``online_only``), by name
    then version."""
    query = select(feature_groups).where(feature_groups.c.project_id == project_id)
    if online_only:
        query = query.where(feature_groups.c.online_enabled.is_(True))
    with catalog.engine.connect() as conn:
        rows = conn.execute(query.order_by(feature_groups.c.name, feature_groups.c.version)).mappings()
        return [_group(row) for row in rows]


def set_features(
    catalog: Catalog, group_id: int, features: list[Feature] | None, *, only_if_unset: bool = False
) -> None:
    """Store a feature group's schema (None: no schema yet); with ``only_if_unset``, only when it
    has none yet (the first commit fixes it, whichever writer records it)."""
    query = update(feature_groups).where(feature_groups.c.id == group_id)
    if only_if_unset:
        # SQLite stores a JSON None as the text 'null', PostgreSQL as SQL NULL
        column = feature_groups.c.features
        query = query.where(or_(column.is_(None), cast(column, Text) == "null"))
    with catalog.engine.begin() as conn:
        conn.execute(query.values(features=None if features is None else [f.to_dict() for f in features]))


def set_description(catalog: Catalog, group_id: int, description: str) -> None:
    """Replace a feature group's description."""
    with catalog.engine.begin() as conn:
        conn.execute(
            update(feature_groups).where(feature_groups.c.id == group_id).values(description=description)
        )


def delete_feature_group(catalog: Catalog, group_id: int) -> None:
    """Delete a feature group, its commit history and its statistics state (one transaction; a
    stale state must never meet a later group that reuses the id)."""
    with catalog.engine.begin() as conn:
        conn.execute(delete(fg_commits).where(fg_commits.c.feature_group_id == group_id))
        conn.execute(delete(fg_statistics_state).where(fg_statistics_state.c.feature_group_id == group_id))
        conn.execute(delete(feature_groups).where(feature_groups.c.id == group_id))


def _group(row: RowMapping) -> FeatureGroupMeta:
    return FeatureGroupMeta(
        id=int(row["id"]),
        name=row["name"],
        version=int(row["version"]),
        primary_key=list(row["primary_key"]),
        event_time=row["event_time"],
        online_enabled=bool(row["online_enabled"]),
        description=row["description"] or "",
        features=None if row["features"] is None else [Feature.from_dict(f) for f in row["features"]],
        expectation_suite=row["expectation_suite"],
        table_name=row["table_name"],
        created_at=row["created_at"],
        embedding_index=row["embedding_index"],
        event_time_unit=row["event_time_unit"],
        external=row["external"],
    )


# --- feature views --------------------------------------------------------------------------------
def insert_feature_view(catalog: Catalog, project_id: int, values: Mapping[str, Any]) -> bool:
    """Create a feature view row from ``values`` (its columns except the ids and creation time).

    Returns False when the (project, name, version) exists already, e.g. created concurrently.
    """
    try:
        with catalog.engine.begin() as conn:
            conn.execute(insert(feature_views).values(project_id=project_id, created_at=utcnow(), **values))
    except SqlIntegrityError:
        return False
    return True


def find_feature_view(
    catalog: Catalog, project_id: int, name: str, version: int | None
) -> FeatureViewMeta | None:
    """Feature view ``name`` at ``version`` (None = the latest version), or None."""
    query = select(feature_views).where(
        feature_views.c.project_id == project_id, feature_views.c.name == name
    )
    if version is None:
        query = query.order_by(feature_views.c.version.desc()).limit(1)
    else:
        query = query.where(feature_views.c.version == version)
    with catalog.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else _view(row)


def list_feature_views(catalog: Catalog, project_id: int, name: str | None = None) -> list[FeatureViewMeta]:
    """The project's feature views (all, or the versions of ``name``), by name then version."""
    query = select(feature_views).where(feature_views.c.project_id == project_id)
    if name is not None:
        query = query.where(feature_views.c.name == name)
    with catalog.engine.connect() as conn:
        rows = conn.execute(query.order_by(feature_views.c.name, feature_views.c.version)).mappings()
        return [_view(row) for row in rows]


def delete_feature_view(catalog: Catalog, view_id: int) -> None:
    """Delete a feature view and its training-dataset records (one transaction)."""
    with catalog.engine.begin() as conn:
        conn.execute(delete(training_datasets).where(training_datasets.c.feature_view_id == view_id))
        conn.execute(delete(feature_views).where(feature_views.c.id == view_id))


def delete_training_dataset(catalog: Catalog, view_id: int, version: int) -> None:
    """Delete one training-dataset record of a feature view."""
    with catalog.engine.begin() as conn:
        conn.execute(
            delete(training_datasets).where(
                training_datasets.c.feature_view_id == view_id, training_datasets.c.version == version
            )
        )


def _view(row: RowMapping) -> FeatureViewMeta:
    return FeatureViewMeta(
        id=int(row["id"]),
        name=row["name"],
        version=int(row["version"]),
        description=row["description"] or "",
        query=dict(row["query"]),
        labels=list(row["labels"]),
        transformations=dict(row["transformations"]),
        created_at=row["created_at"],
        on_demand=list(row["on_demand"] or []),
        request_fields=list(row["request_fields"] or []),
    )


# --- training datasets ----------------------------------------------------------------------------
def insert_training_dataset(catalog: Catalog, view_id: int, record: TrainingDataset) -> bool:
    """Store a training-dataset version of feature view ``view_id``.

    Returns False when the version number is taken (another writer got there first).
    """
    try:
        with catalog.engine.begin() as conn:
            conn.execute(
                insert(training_datasets).values(
                    feature_view_id=view_id,
                    version=record.version,
                    description=record.description,
                    start_time=record.start_time,
                    end_time=record.end_time,
                    split=_json_split(record.split),
                    input_versions=record.input_versions,
                    transformation_stats=record.transformation_stats,
                    row_counts=record.row_counts,
                    table_name=record.table_name,
                    table_version=record.table_version,
                    created_at=record.created_at,
                )
            )
    except SqlIntegrityError:
        return False
    return True


def find_training_datasets(
    catalog: Catalog, view_id: int, version: int | None = None
) -> list[TrainingDataset]:
    """Training datasets of feature view ``view_id`` by version (all, or the one ``version``)."""
    query = select(training_datasets).where(training_datasets.c.feature_view_id == view_id)
    if version is not None:
        query = query.where(training_datasets.c.version == version)
    with catalog.engine.connect() as conn:
        rows = conn.execute(query.order_by(training_datasets.c.version)).mappings().all()
    return [
        TrainingDataset(
            version=int(r["version"]),
            description=r["description"] or "",
            start_time=r["start_time"],
            end_time=r["end_time"],
            split=_split_from_json(dict(r["split"])),
            input_versions=dict(r["input_versions"]),
            transformation_stats=dict(r["transformation_stats"]),
            row_counts=dict(r["row_counts"]),
            table_name=r["table_name"],
            table_version=int(r["table_version"]),
            created_at=r["created_at"],
        )
        for r in rows
    ]


def _json_split(split: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in split.items()}


def _split_from_json(split: dict[str, Any]) -> dict[str, Any]:
    return {
        k: datetime.fromisoformat(v) if k.endswith("_start") and isinstance(v, str) else v
        for k, v in split.items()
    }


# --- reads for other domains (scheduler triggers, registry lineage) -------------------------------
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


def training_dataset_inputs(conn: Connection, view_id: int, version: int) -> dict[str, int | None] | None:
    """The input Delta versions ``{offline table: version}`` of a training dataset (None for a
    group that had no commit yet), or None when there is no such training dataset."""
    found = conn.execute(
        select(training_datasets.c.input_versions).where(
            training_datasets.c.feature_view_id == view_id, training_datasets.c.version == version
        )
    ).scalar_one_or_none()
    return None if found is None else {str(k): None if v is None else int(v) for k, v in dict(found).items()}
