"""Catching feature groups up after a write that did not finish (ARCHITECTURE.md invariant 4,
"nothing lost"), on ``fti.connect``, deciding from the catalog which groups need it.

A write enters itself in the catalog before its offline commit and leaves once the commit is
recorded (:func:`fti.features.commit.writing`); the online store and the embedding index record
the offline version they applied. So a group is behind only when

- a write of it is entered: its writer died (or is still writing) after its offline commit,
  perhaps before the catalog recorded it;
- it has recorded commits but no schema: the writer of its first commit died before storing it;
- its online store or embedding index applied another version than the newest recorded commit:
  a writer died between the record and the online write, or the store was emptied or replaced
  (a new ``FTI_ONLINE_URL``, a Redis without persistence restarted).

Those groups are caught up (:meth:`FeatureGroup.reconcile` and :meth:`FeatureGroup.materialize`);
no other group's offline table is opened, so connecting costs a few catalog queries (and an
applied-version read per online group) whatever the number of groups. The entry of a write is
removed once its group is caught up and its writer is provably gone (:func:`fti._process.gone`),
or, for a writer on another host, after :data:`FOREIGN_WRITE_EXPIRY`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fti import _process
from fti.errors import FtiError
from fti.features import records

if TYPE_CHECKING:
    from fti.features._project import FeatureProject
    from fti.features.records import FeatureGroupMeta

log = logging.getLogger(__name__)

FOREIGN_WRITE_EXPIRY = timedelta(days=1)
"""How long the entry of a write by a process on another host, which cannot be checked, makes
every connect catch its group up; then it is removed once the group is caught up (a write that
outlives it and then dies is caught up by the group's next insert or ``fg.materialize()``)."""


def catch_up(project: FeatureProject, *, every_group: bool = False) -> int:
    """Catch up the project's groups found behind (see the module docs), or with ``every_group``
    every group, each compared with its offline table; returns the online rows written.

    A group that cannot be caught up is logged and skipped (its entries stay): one broken group
    must not make connecting to the project fail (its own inserts and reads still report it).
    """
    catalog = project.backends.catalog
    writes = records.list_writes(catalog, project.id)
    groups = records.list_feature_groups(catalog, project.id)
    latest = records.latest_versions(catalog, project.id)
    entered = {w.group_id for w in writes}
    written = 0
    caught_up: set[int] = set()
    for meta in groups:
        if meta.external is not None:  # nothing fti writes: no table to catch up
            caught_up.add(meta.id)
            continue
        try:
            if not (every_group or meta.id in entered or _behind(project, meta, latest.get(meta.id))):
                continue
            from fti.features.feature_group import FeatureGroup

            group = FeatureGroup(project, meta)
            group.reconcile()
            written += group.materialize()
        except FtiError as exc:
            log.warning("feature group %r version %s was not caught up: %s", meta.name, meta.version, exc)
        else:
            caught_up.add(meta.id)
    now = datetime.now(UTC)
    records.end_writes(
        catalog,
        [
            w.id
            for w in writes
            if w.group_id in caught_up
            and (
                _process.gone(w.writer)
                or (not _process.local(w.writer) and now - w.started_at > FOREIGN_WRITE_EXPIRY)
            )
        ],
    )
    return written


def _behind(project: FeatureProject, meta: FeatureGroupMeta, newest: int | None) -> bool:
    """Whether a group with no write entered may still be behind its recorded commits."""
    if newest is None:  # nothing recorded (and no write entered): nothing was committed
        return False
    if meta.features is None:
        return True
    if not meta.online_enabled:
        return False
    if project.backends.online.applied_version(meta.table_name) != newest:
        return True
    return (
        meta.embedding_index is not None
        and project.backends.vectors.applied_version(meta.table_name) != newest
    )
