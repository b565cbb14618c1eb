"""Evaluations as stored with their model versions (through ``fti.registry.records.evaluations``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError
from fti.registry.evaluation.results import Evaluation

if TYPE_CHECKING:
    from fti.registry.model_version import ModelVersion
    from fti.storage.metadata.base import Catalog, Connection


def save(catalog: Catalog, mv: ModelVersion, content: dict[str, Any], user: str) -> int:
    """Store an evaluation of ``mv`` as its next number; returns the number."""
    from fti.registry import records
    from fti.registry.records import evaluations

    return records.write(
        catalog,
        lambda conn: evaluations.insert_evaluation(conn, mv.id, content, user),
        attempts=5,
        conflict=f"could not store an evaluation of {mv.ref}: concurrent evaluations kept taking the next "
        "number; retry",
    )


def find(conn: Connection, mv: ModelVersion, number: int | None) -> Evaluation | None:
    """Evaluation ``number`` of ``mv`` (its latest with None), or None."""
    from fti.registry.records import evaluations

    stored = evaluations.find_evaluation(conn, mv.id, number)
    return None if stored is None else _evaluation(mv, stored)


def get(conn: Connection, mv: ModelVersion, number: int | None) -> Evaluation:
    """Like :func:`find`; NotFoundError (listing the numbers there are) instead of None.

    Raises:
        ValidationError: ``number`` is not an integer >= 1.
    """
    from fti._names import check_version

    check_version(number, "evaluation", allow_none=True)
    found = find(conn, mv, number)
    if found is None:
        known = [e.number for e in find_all(conn, mv)]
        what = "evaluation" if number is None else f"evaluation {number}"
        raise NotFoundError(
            f"{mv.ref} has no {what} (evaluations: {known or 'none'}); run mr.evaluate({mv.ref!r}, ...)"
        )
    return found


def find_all(conn: Connection, mv: ModelVersion) -> list[Evaluation]:
    """Every evaluation of ``mv``, oldest first."""
    from fti.registry.records import evaluations

    return [_evaluation(mv, stored) for stored in evaluations.list_evaluations(conn, mv.id)]


def _evaluation(mv: ModelVersion, stored: Any) -> Evaluation:
    return Evaluation.from_content(
        mv.name, mv.version, stored.number, stored.content, stored.created_at, stored.created_by
    )
