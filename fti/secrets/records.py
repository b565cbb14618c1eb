"""The secrets domain's catalog records: the only module that touches the ``secrets`` table.

Rows hold Fernet tokens, never values; functions take an open SQLAlchemy connection so a caller
can group them in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.storage.metadata.tables import secrets

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class SecretRow:
    """A stored secret: its encrypted token and who set it when."""

    name: str
    token: str
    key_id: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


def _row(r: object) -> SecretRow:
    m = r._mapping  # type: ignore[attr-defined]
    return SecretRow(
        m["name"], m["token"], m["key_id"], m["created_at"], m["created_by"], m["updated_at"], m["updated_by"]
    )


def put(engine: Engine, project_id: int, name: str, token: str, key_id: str, who: str, now: datetime) -> bool:
    """Store ``token`` as secret ``name`` (replacing an existing one); True when it was created."""
    values = {"token": token, "key_id": key_id, "updated_at": now, "updated_by": who}
    where = (secrets.c.project_id == project_id, secrets.c.name == name)
    with engine.begin() as conn:
        if conn.execute(update(secrets).where(*where).values(**values)).rowcount:
            return False
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(secrets).values(
                    project_id=project_id, name=name, created_at=now, created_by=who, **values
                )
            )
        return True
    except SqlIntegrityError:  # created concurrently: replace that one
        with engine.begin() as conn:
            conn.execute(update(secrets).where(*where).values(**values))
        return False


def get(conn: Connection, project_id: int, name: str) -> SecretRow | None:
    found = conn.execute(
        select(secrets).where(secrets.c.project_id == project_id, secrets.c.name == name)
    ).first()
    return None if found is None else _row(found)


def list_all(conn: Connection, project_id: int) -> list[SecretRow]:
    query = select(secrets).where(secrets.c.project_id == project_id).order_by(secrets.c.name)
    return [_row(r) for r in conn.execute(query)]


def names(conn: Connection, project_id: int) -> list[str]:
    query = select(secrets.c.name).where(secrets.c.project_id == project_id).order_by(secrets.c.name)
    return [str(n) for n in conn.execute(query).scalars()]


def remove(conn: Connection, project_id: int, name: str) -> bool:
    """Delete secret ``name``; False when there was none."""
    result = conn.execute(delete(secrets).where(secrets.c.project_id == project_id, secrets.c.name == name))
    return bool(result.rowcount)


def replace_token(
    conn: Connection, project_id: int, name: str, old_token: str, token: str, key_id: str
) -> bool:
    """Swap the token of ``name`` if it is still ``old_token`` (re-encryption); the rest is unchanged."""
    result = conn.execute(
        update(secrets)
        .where(secrets.c.project_id == project_id, secrets.c.name == name, secrets.c.token == old_token)
        .values(token=token, key_id=key_id)
    )
    return bool(result.rowcount)
