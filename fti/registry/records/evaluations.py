"""The registry's evaluation records: the only module that touches ``model_evaluations``.

An evaluation is written once, numbered per model version (1, 2, ...), and never changed; it is
deleted with its version (foreign key ``ON DELETE CASCADE``). Rows come back as plain
:class:`StoredEvaluation` values; :mod:`fti.registry.evaluation` turns them into
:class:`~fti.registry.evaluation.Evaluation` objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from fti.storage.metadata.tables import model_evaluations
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.storage.metadata.base import Connection

FIELDS = (
    "task",
    "rows",
    "source",
    "settings",
    "metrics",
    "slices",
    "fairness",
    "baseline",
    "scorer",
    "seconds",
)
"""The columns an evaluation's content fills (the rest are identity and authorship)."""


@dataclass(frozen=True)
class StoredEvaluation:
    """One ``model_evaluations`` row: ``content`` holds the :data:`FIELDS` by name."""

    model_version_id: int
    number: int
    content: dict[str, Any]
    created_at: datetime
    created_by: str


def insert_evaluation(conn: Connection, model_version_id: int, content: Mapping[str, Any], user: str) -> int:
    """Store an evaluation of one version row as its next number (in the caller's transaction).

    A concurrent insert of the same number fails on the unique key; retry with
    :func:`fti.registry.records.write`.

    Returns:
        The evaluation's number.
    """
    last = conn.execute(
        select(func.max(model_evaluations.c.number)).where(
            model_evaluations.c.model_version_id == model_version_id
        )
    ).scalar_one_or_none()
    number = 1 if last is None else int(last) + 1
    conn.execute(
        insert(model_evaluations).values(
            model_version_id=model_version_id,
            number=number,
            created_at=utcnow(),
            created_by=user,
            **{name: content[name] for name in FIELDS},
        )
    )
    return number


def find_evaluation(conn: Connection, model_version_id: int, number: int | None) -> StoredEvaluation | None:
    """Evaluation ``number`` of a version row (its latest with None), or None."""
    query = select(model_evaluations).where(model_evaluations.c.model_version_id == model_version_id)
    if number is None:
        query = query.order_by(model_evaluations.c.number.desc()).limit(1)
    else:
        query = query.where(model_evaluations.c.number == number)
    row = conn.execute(query).mappings().first()
    return None if row is None else _stored(row)


def list_evaluations(conn: Connection, model_version_id: int) -> list[StoredEvaluation]:
    """Every evaluation of a version row, oldest first."""
    query = (
        select(model_evaluations)
        .where(model_evaluations.c.model_version_id == model_version_id)
        .order_by(model_evaluations.c.number)
    )
    return [_stored(row) for row in conn.execute(query).mappings()]


def _stored(row: Any) -> StoredEvaluation:
    return StoredEvaluation(
        model_version_id=int(row["model_version_id"]),
        number=int(row["number"]),
        content={name: row[name] for name in FIELDS},
        created_at=row["created_at"],
        created_by=row["created_by"],
    )
