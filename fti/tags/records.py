"""The tags domain's catalog records: the only module that touches ``tags``
(``fti.storage.metadata.tables.tags``).

A tag row is ``(project, kind, object id, tag)``; ``fti.tags`` validates kinds and tags and the
entities (feature groups, feature views, model versions, runs) call it with their own ids. Reads
take a ``Connection`` so a listing reads its rows and their tags in one go; the owner of an
object calls :func:`forget` in the transaction that deletes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.storage.metadata.tables import tags
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog, Connection


def add(catalog: Catalog, project_id: int, kind: str, object_id: int, tag: str) -> bool:
    """Tag an object; False when it already had the tag (adding is idempotent)."""
    try:
        with catalog.begin() as conn:
            conn.execute(
                insert(tags).values(
                    project_id=project_id, kind=kind, object_id=object_id, tag=tag, created_at=utcnow()
                )
            )
    except SqlIntegrityError:  # the unique key: already tagged (or tagged concurrently)
        return False
    return True


def remove(catalog: Catalog, project_id: int, kind: str, object_id: int, tag: str) -> bool:
    """Remove a tag from an object; False when it did not have it."""
    with catalog.begin() as conn:
        result = conn.execute(
            delete(tags).where(
                tags.c.project_id == project_id,
                tags.c.kind == kind,
                tags.c.object_id == object_id,
                tags.c.tag == tag,
            )
        )
    return bool(result.rowcount)


def forget(conn: Connection, project_id: int, kind: str, object_id: int) -> None:
    """Remove every tag of an object, in the caller's transaction (the one deleting the object)."""
    conn.execute(
        delete(tags).where(
            tags.c.project_id == project_id, tags.c.kind == kind, tags.c.object_id == object_id
        )
    )


def tags_of(conn: Connection, project_id: int, kind: str, object_ids: Sequence[int]) -> dict[int, list[str]]:
    """``{object id: sorted tags}`` of several objects of one kind, in one query (untagged: [])."""
    found: dict[int, list[str]] = {int(i): [] for i in object_ids}
    if not found:
        return found
    query = (
        select(tags.c.object_id, tags.c.tag)
        .where(tags.c.project_id == project_id, tags.c.kind == kind, tags.c.object_id.in_(list(found)))
        .order_by(tags.c.tag)
    )
    for object_id, tag in conn.execute(query):
        found[int(object_id)].append(str(tag))
    return found


def tagged(conn: Connection, project_id: int, kind: str, text: str, *, exact: bool) -> list[int]:
    """Ids of the objects of ``kind`` with the tag ``text`` (``exact``) or a tag containing it."""
    condition = tags.c.tag == text if exact else tags.c.tag.contains(text, autoescape=True)
    query = (
        select(tags.c.object_id)
        .where(tags.c.project_id == project_id, tags.c.kind == kind, condition)
        .distinct()
    )
    return sorted(int(i) for i in conn.execute(query).scalars())


def counts(catalog: Catalog, project_id: int) -> list[tuple[str, str, int]]:
    """``(tag, kind, objects)`` for every tag in use in the project, by tag then kind."""
    query = (
        select(tags.c.tag, tags.c.kind, func.count())
        .where(tags.c.project_id == project_id)
        .group_by(tags.c.tag, tags.c.kind)
        .order_by(tags.c.tag, tags.c.kind)
    )
    with catalog.connect() as conn:
        return [(str(t), str(k), int(n)) for t, k, n in conn.execute(query)]
