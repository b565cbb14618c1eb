"""The sources domain's catalog records: the only module that touches ``source_cursors``.

A cursor row is advanced by compare-and-set on its ``revision``, so two runs that read from the
same cursor never overwrite each other's progress blindly (see :mod:`fti.sources.incremental`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.storage.metadata.tables import source_cursors

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class CursorRow:
    """A stored cursor: its position (typed watermark JSON), boundary digests and bookkeeping."""

    name: str
    source: str
    column: str
    value: dict[str, Any]
    boundary: list[str] | None
    rows_total: int
    revision: int
    created_at: datetime
    updated_at: datetime


def _row(r: Any) -> CursorRow:
    m = r._mapping
    return CursorRow(
        name=m["name"],
        source=m["source"],
        column=m["column_name"],
        value=dict(m["value"]),
        boundary=None if m["boundary"] is None else list(m["boundary"]),
        rows_total=int(m["rows_total"]),
        revision=int(m["revision"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def load(conn: Connection, project_id: int, name: str) -> CursorRow | None:
    found = conn.execute(
        select(source_cursors).where(source_cursors.c.project_id == project_id, source_cursors.c.name == name)
    ).first()
    return None if found is None else _row(found)


def list_all(conn: Connection, project_id: int) -> list[CursorRow]:
    query = (
        select(source_cursors)
        .where(source_cursors.c.project_id == project_id)
        .order_by(source_cursors.c.name)
    )
    return [_row(r) for r in conn.execute(query)]


def create(
    engine: Engine,
    project_id: int,
    name: str,
    *,
    source: str,
    column: str,
    value: dict[str, Any],
    boundary: list[str] | None,
    rows: int,
    now: datetime,
) -> bool:
    """Insert the first position of cursor ``name``; False when another run created it first."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(source_cursors).values(
                    project_id=project_id,
                    name=name,
                    source=source,
                    column_name=column,
                    value=value,
                    boundary=boundary,
                    rows_total=rows,
                    revision=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        return True
    except SqlIntegrityError:
        return False


def advance(
    engine: Engine,
    project_id: int,
    name: str,
    *,
    revision: int,
    source: str,
    value: dict[str, Any],
    boundary: list[str] | None,
    rows_total: int,
    now: datetime,
) -> bool:
    """Move cursor ``name`` if it is still at ``revision``; False when it moved in between."""
    with engine.begin() as conn:
        result = conn.execute(
            update(source_cursors)
            .where(
                source_cursors.c.project_id == project_id,
                source_cursors.c.name == name,
                source_cursors.c.revision == revision,
            )
            .values(
                source=source,
                value=value,
                boundary=boundary,
                rows_total=rows_total,
                revision=revision + 1,
                updated_at=now,
            )
        )
    return bool(result.rowcount)


def remove(conn: Connection, project_id: int, name: str) -> bool:
    result = conn.execute(
        delete(source_cursors).where(source_cursors.c.project_id == project_id, source_cursors.c.name == name)
    )
    return bool(result.rowcount)
