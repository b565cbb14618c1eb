"""The projects table: the namespace every other catalog row belongs to.

Foundation records, used by ``fti.connect`` (``fti.project``); like a domain's ``records.py``,
this is the only module that writes SQL against ``projects``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.storage.metadata.tables import projects
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog


@dataclass(frozen=True)
class ProjectRecord:
    """A project as the catalog holds it."""

    id: int
    name: str
    created_at: datetime


def _record(row: Any) -> ProjectRecord:
    return ProjectRecord(id=int(row.id), name=str(row.name), created_at=row.created_at)


def find(catalog: Catalog, name: str) -> ProjectRecord | None:
    """The project called ``name``, or None."""
    with catalog.connect() as conn:
        row = conn.execute(select(projects).where(projects.c.name == name)).first()
    return None if row is None else _record(row)


def list_projects(catalog: Catalog) -> list[ProjectRecord]:
    """Every project, by name."""
    with catalog.connect() as conn:
        return [_record(r) for r in conn.execute(select(projects).order_by(projects.c.name))]


def get_or_create(catalog: Catalog, name: str) -> ProjectRecord:
    """The project called ``name``, created first when it does not exist (safe to race)."""
    found = find(catalog, name)
    if found is not None:
        return found
    try:
        with catalog.begin() as conn:
            conn.execute(insert(projects).values(name=name, created_at=utcnow()))
    except SqlIntegrityError:  # created concurrently by another process: read theirs
        pass
    found = find(catalog, name)
    assert found is not None
    return found
