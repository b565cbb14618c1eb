"""Aliases: movable, unique-per-model names (``production``) for model versions, with history.

Moving an alias is one catalog transaction (the alias row and its history row change together),
so readers see the old or the new version, never none. Every change records who, when, from and
to, so a rollback is one ``set_alias`` call and the history shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from fti._names import check_alias as check_alias  # the alias rule lives with the other name rules
from fti.errors import NotFoundError
from fti.storage.metadata.tables import alias_history, model_aliases, model_versions
from fti.storage.metadata.tables._base import utcnow


@dataclass(frozen=True)
class AliasChange:
    """One change of an alias: ``from_version`` None = created, ``to_version`` None = deleted."""

    alias: str
    from_version: int | None
    to_version: int | None
    changed_at: datetime
    changed_by: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "changed_at": self.changed_at.isoformat(),
            "changed_by": self.changed_by,
            "reason": self.reason,
        }


def current(conn: Connection, model_id: int, alias: str, *, lock: bool = False) -> int | None:
    """The version ``alias`` points to, or None.

    With ``lock``, the alias row stays locked until the transaction ends (PostgreSQL; SQLite
    transactions are already serialised), so concurrent moves record exact from/to history.
    """
    # Lock the alias row alone: a FOR UPDATE over a join would re-check the join after a
    # concurrent move and lose the row (PostgreSQL EvalPlanQual), turning a move into an insert.
    query = select(model_aliases.c.model_version_id).where(
        model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
    )
    if lock:
        query = query.with_for_update()
    version_id = conn.execute(query).scalar_one_or_none()
    if version_id is None:
        return None
    found = conn.execute(
        select(model_versions.c.version).where(model_versions.c.id == version_id)
    ).scalar_one()
    return int(found)


def aliases_of(conn: Connection, model_version_id: int) -> list[str]:
    """The aliases pointing at one version row."""
    query = (
        select(model_aliases.c.alias)
        .where(model_aliases.c.model_version_id == model_version_id)
        .order_by(model_aliases.c.alias)
    )
    return list(conn.execute(query).scalars())


def set_alias(
    conn: Connection, model_id: int, alias: str, version_id: int, version: int, user: str, reason: str = ""
) -> int | None:
    """Point ``alias`` at a version row (in the caller's transaction); returns the previous version."""
    previous = current(conn, model_id, alias, lock=True)
    now = utcnow()
    if previous is None:
        conn.execute(
            insert(model_aliases).values(
                model_id=model_id, alias=alias, model_version_id=version_id, updated_at=now, updated_by=user
            )
        )
    elif previous != version:
        conn.execute(
            update(model_aliases)
            .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
            .values(model_version_id=version_id, updated_at=now, updated_by=user)
        )
    else:
        return previous  # already there: not a change, no history row
    _record(conn, model_id, alias, previous, version, user, reason, now)
    return previous


def delete_alias(
    conn: Connection, model_id: int, model_name: str, alias: str, user: str, reason: str = ""
) -> int:
    """Remove ``alias`` (in the caller's transaction); returns the version it pointed to."""
    previous = current(conn, model_id, alias, lock=True)
    if previous is None:
        raise NotFoundError(
            f"model {model_name!r} has no alias {alias!r} (aliases: {list_aliases(conn, model_id) or 'none'})"
        )
    conn.execute(
        delete(model_aliases).where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
    )
    _record(conn, model_id, alias, previous, None, user, reason, utcnow())
    return previous


def list_aliases(conn: Connection, model_id: int) -> dict[str, int]:
    """``{alias: version}`` of one model."""
    query = (
        select(model_aliases.c.alias, model_versions.c.version)
        .select_from(
            model_aliases.join(model_versions, model_aliases.c.model_version_id == model_versions.c.id)
        )
        .where(model_aliases.c.model_id == model_id)
        .order_by(model_aliases.c.alias)
    )
    return {str(a): int(v) for a, v in conn.execute(query)}


def history(conn: Connection, model_id: int, alias: str | None = None) -> list[AliasChange]:
    """Every recorded change of the model's aliases (or of one alias), oldest first."""
    query = select(alias_history).where(alias_history.c.model_id == model_id).order_by(alias_history.c.id)
    if alias is not None:
        query = query.where(alias_history.c.alias == alias)
    return [
        AliasChange(
            alias=r["alias"],
            from_version=r["from_version"],
            to_version=r["to_version"],
            changed_at=r["changed_at"],
            changed_by=r["changed_by"],
            reason=r["reason"],
        )
        for r in conn.execute(query).mappings()
    ]


def _record(
    conn: Connection,
    model_id: int,
    alias: str,
    from_version: int | None,
    to_version: int | None,
    user: str,
    reason: str,
    at: datetime,
) -> None:
    conn.execute(
        insert(alias_history).values(
            model_id=model_id,
            alias=alias,
            from_version=from_version,
            to_version=to_version,
            changed_at=at,
            changed_by=user,
            reason=reason,
        )
    )
