"""Tags: free labels such as ``pii`` or ``champion`` on feature groups, feature views, model
versions and runs, stored in the catalog and searchable (``fs.search_feature_groups(tag="pii")``,
the web UI's search, ``fti tags``).

Use them through the objects: ``fg.add_tag("pii")``, ``fg.remove_tag("pii")``, ``fg.tags``, and the
same on a ``FeatureView``, a ``ModelVersion`` and a ``Run``. A tag is 1-63 characters: lowercase
letters, digits, ``_``, ``-`` and ``.``, starting with a letter or digit. Adding a tag an object
already has changes nothing; deleting an object removes its tags.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from fti.errors import NotFoundError, ValidationError
from fti.tags import records

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog, Connection


class _Backends(Protocol):
    @property
    def catalog(self) -> Catalog: ...


class Project(Protocol):
    """What tags need of a project (``fti.project.Project`` has it): its id and catalog."""

    @property
    def id(self) -> int: ...

    @property
    def backends(self) -> _Backends: ...


__all__ = ["KINDS", "add", "check_tag", "counts", "find", "forget", "remove", "tags_of", "tags_of_many"]

KINDS = ("feature_group", "feature_view", "model_version", "run")
"""The kinds of object that carry tags."""

_TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def check_tag(tag: object) -> str:
    """Return ``tag`` if it is a valid tag; else ValidationError saying what a tag looks like."""
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ValidationError(
            f"invalid tag {tag!r}: use 1-63 lowercase letters, digits, '_', '-' or '.', starting with a "
            "letter or digit (for example 'pii' or 'team-fraud')"
        )
    return tag


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValidationError(f"invalid object kind {kind!r} for tags: use one of {', '.join(KINDS)}")
    return kind


def add(project: Project, kind: str, object_id: int, tag: str) -> None:
    """Tag the object ``object_id`` of ``kind`` (idempotent)."""
    records.add(project.backends.catalog, project.id, _check_kind(kind), object_id, check_tag(tag))


def remove(project: Project, kind: str, object_id: int, tag: str, *, what: str = "the object") -> None:
    """Remove ``tag`` from the object.

    Raises:
        NotFoundError: the object does not have the tag (the message lists the ones it has).
    """
    check_tag(tag)
    if not records.remove(project.backends.catalog, project.id, _check_kind(kind), object_id, tag):
        present = tags_of(project, kind, object_id)
        raise NotFoundError(f"{what} has no tag {tag!r} (its tags: {present or 'none'})")


def tags_of(project: Project, kind: str, object_id: int) -> list[str]:
    """The object's tags, sorted."""
    return tags_of_many(project, kind, [object_id])[object_id]


def tags_of_many(
    project: Project, kind: str, object_ids: Sequence[int], *, conn: Connection | None = None
) -> dict[int, list[str]]:
    """``{object id: sorted tags}`` of many objects of one kind, in one catalog query (on ``conn``,
    an open catalog connection, when given)."""
    _check_kind(kind)
    if conn is not None:
        return records.tags_of(conn, project.id, kind, object_ids)
    with project.backends.catalog.connect() as own:
        return records.tags_of(own, project.id, kind, object_ids)


def find(
    project: Project, kind: str, text: str, *, exact: bool = False, conn: Connection | None = None
) -> list[int]:
    """Ids of the objects of ``kind`` tagged ``text`` (``exact``) or with a tag containing it."""
    if not isinstance(text, str):
        raise ValidationError(f"tag search text must be a string, got {text!r}")
    _check_kind(kind)
    if conn is not None:
        return records.tagged(conn, project.id, kind, text.lower(), exact=exact)
    with project.backends.catalog.connect() as own:
        return records.tagged(own, project.id, kind, text.lower(), exact=exact)


def counts(project: Project) -> list[tuple[str, str, int]]:
    """``(tag, kind, number of objects)`` for every tag in use, by tag then kind."""
    return records.counts(project.backends.catalog, project.id)


def forget(project: Project, kind: str, object_id: int) -> None:
    """Remove every tag of an object; its owner calls this when deleting the object."""
    with project.backends.catalog.begin() as conn:
        records.forget(conn, project.id, _check_kind(kind), object_id)
