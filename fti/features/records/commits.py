"""A feature group's commit history in the catalog (``fg_commits``), the mergeable statistics
state of its latest version (``fg_statistics_state``) and its writes under way (``fg_writes``):
part of the feature domain's records (:mod:`fti.features.records`, which re-exports these).

Every offline (Delta) commit of a group has one entry, written by the writer right after its
commit or, when the writer died in between, recovered from the Delta log by reconciliation. A
write is entered in ``fg_writes`` before its offline commit and leaves it once the commit is
recorded, so an entry left behind names a group whose history may lack a commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.storage.metadata.tables import feature_groups, fg_commits, fg_statistics_state, fg_writes
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog

__all__ = [
    "CommitInfo",
    "Write",
    "advance_statistics_state",
    "begin_write",
    "commit_extent",
    "commit_statistics",
    "end_writes",
    "latest_versions",
    "list_commits",
    "list_writes",
    "record_commit",
    "save_statistics_state",
    "statistics_state",
]


@dataclass(frozen=True)
class CommitInfo:
    """One entry of a feature group's history."""

    version: int
    committed_at: datetime
    operation: str
    rows_inserted: int
    validation_status: str
    validation_report: dict[str, Any] | None


def record_commit(
    catalog: Catalog,
    group_id: int,
    *,
    delta_version: int,
    operation: str,
    rows: int,
    status: str,
    report: dict[str, Any] | None = None,
    statistics: dict[str, Any] | None = None,
    committed_at: datetime | None = None,
    recovered: bool = False,
) -> bool:
    """Add one commit to a feature group's history; returns whether this call added it.

    A writer's record (``recovered=False``) completes the entry that reconciliation may have made
    while the writer was between its offline commit and this call; a ``recovered`` commit (read
    back from the offline table's log) never replaces an existing entry.
    """
    values = {
        "operation": operation,
        "rows_inserted": rows,
        "validation_status": status,
        "validation_report": report,
        "statistics": statistics,
    }
    try:
        with catalog.engine.begin() as conn:
            conn.execute(
                insert(fg_commits).values(
                    feature_group_id=group_id,
                    delta_version=delta_version,
                    committed_at=committed_at or utcnow(),
                    **values,
                )
            )
        return True
    except SqlIntegrityError:
        if recovered:
            return False
    with catalog.engine.begin() as conn:
        conn.execute(
            update(fg_commits)
            .where(fg_commits.c.feature_group_id == group_id, fg_commits.c.delta_version == delta_version)
            .values(**values)
        )
    return False


def commit_extent(catalog: Catalog, group_id: int) -> tuple[int, int | None]:
    """How many commits a feature group has recorded, and the newest version among them."""
    query = select(func.count(), func.max(fg_commits.c.delta_version)).where(
        fg_commits.c.feature_group_id == group_id
    )
    with catalog.engine.connect() as conn:
        count, newest = conn.execute(query).one()
    return int(count), None if newest is None else int(newest)


def latest_versions(catalog: Catalog, project_id: int) -> dict[int, int]:
    """The newest recorded commit version of each feature group of the project that has one, by
    group id (one query, whatever the number of groups)."""
    query = (
        select(fg_commits.c.feature_group_id, func.max(fg_commits.c.delta_version))
        .join(feature_groups, feature_groups.c.id == fg_commits.c.feature_group_id)
        .where(feature_groups.c.project_id == project_id)
        .group_by(fg_commits.c.feature_group_id)
    )
    with catalog.engine.connect() as conn:
        return {int(group): int(newest) for group, newest in conn.execute(query)}


def list_commits(catalog: Catalog, group_id: int) -> list[CommitInfo]:
    """A feature group's commits, oldest first."""
    query = (
        select(fg_commits)
        .where(fg_commits.c.feature_group_id == group_id)
        .order_by(fg_commits.c.delta_version)
    )
    with catalog.engine.connect() as conn:
        return [
            CommitInfo(
                version=int(r["delta_version"]),
                committed_at=r["committed_at"],
                operation=r["operation"],
                rows_inserted=int(r["rows_inserted"]),
                validation_status=r["validation_status"],
                validation_report=r["validation_report"],
            )
            for r in conn.execute(query).mappings()
        ]


def commit_statistics(
    catalog: Catalog, group_id: int, delta_version: int | None
) -> tuple[int, dict[str, dict[str, Any]] | None] | None:
    """``(delta version, stored statistics or None)`` of the commit at ``delta_version`` (None =
    the latest commit), or None when there is no such commit."""
    query = select(fg_commits.c.delta_version, fg_commits.c.statistics).where(
        fg_commits.c.feature_group_id == group_id
    )
    if delta_version is None:
        query = query.order_by(fg_commits.c.delta_version.desc()).limit(1)
    else:
        query = query.where(fg_commits.c.delta_version == delta_version)
    with catalog.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return int(row.delta_version), None if row.statistics is None else dict(row.statistics)


def statistics_state(catalog: Catalog, group_id: int) -> tuple[int, bytes] | None:
    """``(delta version, serialized state)`` of the group's stored statistics state, or None."""
    query = select(fg_statistics_state.c.delta_version, fg_statistics_state.c.state).where(
        fg_statistics_state.c.feature_group_id == group_id
    )
    with catalog.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else (int(row.delta_version), bytes(row.state))


def save_statistics_state(catalog: Catalog, group_id: int, delta_version: int, state: bytes) -> bool:
    """Store the group's statistics state as of ``delta_version`` unless a state of that or a newer
    version is stored already (a slower writer of an older commit never replaces a newer state);
    returns whether it was stored."""
    table = fg_statistics_state
    values = {"delta_version": delta_version, "state": state, "updated_at": utcnow()}
    for _ in range(2):  # an insert that lost the race with another writer's becomes an update
        with catalog.engine.begin() as conn:
            changed = conn.execute(
                update(table)
                .where(table.c.feature_group_id == group_id, table.c.delta_version < delta_version)
                .values(**values)
            ).rowcount
            if changed:
                return True
            if conn.execute(
                select(table.c.delta_version).where(table.c.feature_group_id == group_id)
            ).first():
                return False  # a state of this version or a newer one is stored
        try:
            with catalog.engine.begin() as conn:
                conn.execute(insert(table).values(feature_group_id=group_id, **values))
            return True
        except SqlIntegrityError:
            continue
    return False


def advance_statistics_state(catalog: Catalog, group_id: int, from_version: int, to_version: int) -> bool:
    """Mark the stored state of ``from_version`` as the state of ``to_version`` (the commits in
    between changed no row); returns whether a state of ``from_version`` was stored."""
    table = fg_statistics_state
    with catalog.engine.begin() as conn:
        changed = conn.execute(
            update(table)
            .where(table.c.feature_group_id == group_id, table.c.delta_version == from_version)
            .values(delta_version=to_version, updated_at=utcnow())
        ).rowcount
    return bool(changed)


# --- writes under way ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Write:
    """A write of a feature group entered before its offline commit and not yet ended."""

    id: int
    group_id: int
    writer: str
    """The writing process (:func:`fti._process.identity`)."""
    started_at: datetime


def begin_write(catalog: Catalog, group_id: int, writer: str) -> int:
    """Enter a write of the group by ``writer``; returns its id (for :func:`end_writes`)."""
    with catalog.engine.begin() as conn:
        result = conn.execute(
            insert(fg_writes).values(feature_group_id=group_id, writer=writer, started_at=utcnow())
        )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def end_writes(catalog: Catalog, write_ids: list[int]) -> None:
    """Remove the writes ``write_ids`` (those already removed are skipped)."""
    if write_ids:
        with catalog.engine.begin() as conn:
            conn.execute(delete(fg_writes).where(fg_writes.c.id.in_(write_ids)))


def list_writes(catalog: Catalog, project_id: int) -> list[Write]:
    """The writes of the project's feature groups that have not ended, oldest first."""
    query = (
        select(fg_writes)
        .join(feature_groups, feature_groups.c.id == fg_writes.c.feature_group_id)
        .where(feature_groups.c.project_id == project_id)
        .order_by(fg_writes.c.id)
    )
    with catalog.engine.connect() as conn:
        return [
            Write(id=int(r.id), group_id=int(r.feature_group_id), writer=r.writer, started_at=r.started_at)
            for r in conn.execute(query)
        ]
