"""The stored cursors of incremental reads: list them, look one up, reset one.

Resetting a cursor makes the next incremental read start from the first row again (a full
re-read, e.g. after a backfill of the source); the feature group's upsert makes that safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError
from fti.sources import records
from fti.sources.base import check_cursor_name
from fti.sources.watermark import Watermark

if TYPE_CHECKING:
    from fti.project import Project


@dataclass(frozen=True)
class Cursor:
    """A cursor's committed position."""

    name: str
    source: str
    """What it reads, without credentials (``sql:postgresql://analytics@db/shop``)."""
    column: str
    watermark: Watermark
    rows_total: int
    """Rows delivered through this cursor by all committed reads."""
    boundary_rows: int | None
    """Rows remembered at exactly the watermark (None: too many, they are re-read)."""
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "column": self.column,
            "watermark": str(self.watermark),
            "rows_total": self.rows_total,
            "boundary_rows": self.boundary_rows,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _cursor(row: records.CursorRow) -> Cursor:
    return Cursor(
        row.name,
        row.source,
        row.column,
        Watermark.from_json(row.value),
        row.rows_total,
        None if row.boundary is None else len(row.boundary),
        row.created_at,
        row.updated_at,
    )


def list_cursors(project: Project) -> list[Cursor]:
    """Every cursor of the project, by name."""
    with project.backends.catalog.engine.connect() as conn:
        return [_cursor(r) for r in records.list_all(conn, project.id)]


def get_cursor(project: Project, name: str) -> Cursor:
    """Cursor ``name``; NotFoundError when no read committed it yet."""
    check_cursor_name(name)
    with project.backends.catalog.engine.connect() as conn:
        row = records.load(conn, project.id, name)
    if row is None:
        raise NotFoundError(
            f"no cursor {name!r} in project {project.name!r}: no incremental read committed it"
        )
    return _cursor(row)


def reset_cursor(project: Project, name: str) -> None:
    """Forget cursor ``name``: its next read starts from the first row."""
    check_cursor_name(name)
    with project.backends.catalog.engine.begin() as conn:
        if not records.remove(conn, project.id, name):
            raise NotFoundError(f"no cursor {name!r} in project {project.name!r}")
