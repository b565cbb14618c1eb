"""Upkeep of a feature group's offline table: ``compact`` (few large files instead of one per
insert) and ``vacuum`` (delete the files no version within the retention needs), each recorded
as commits that changed no row.

Mixed into :class:`~fti.features.feature_group.FeatureGroup`; the model server runs both on its
inference logs (:mod:`fti.serving.request_log`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from fti.errors import ValidationError
from fti.features import commit, external, group_statistics

if TYPE_CHECKING:
    from fti.features._project import FeatureProject


class GroupUpkeep:
    """Compaction and vacuum of one feature group (see the module docs)."""

    if TYPE_CHECKING:
        _project: FeatureProject

        @property
        def primary_key(self) -> list[str]: ...

        @property
        def online_enabled(self) -> bool: ...

        @property
        def table_name(self) -> str: ...

        def latest_commit_version(self) -> int | None: ...

    def compact(self) -> int | None:
        """Rewrite the offline table's small files (one per insert) into few large ones.

        One commit that changes no row, recorded in :meth:`commits` as ``compact``; reads get
        faster and every earlier version stays readable until :meth:`vacuum` removes the files
        it needs. The model server compacts inference logs on its own.

        Returns:
            The compaction's commit version, or None when there was nothing to compact.
        """
        external.refuse(self, "be compacted")  # type: ignore[arg-type]  # a FeatureGroup
        offline = self._project.backends.offline
        previous = self.latest_commit_version()
        if previous is None:
            return None
        with commit.writing(self):  # type: ignore[arg-type]  # a FeatureGroup
            version = offline.compact(self.table_name)
            if version is None:
                return None
            self._record_maintenance(previous, version, "compact")
        return version

    def vacuum(self, retention: timedelta = timedelta(days=7)) -> int:
        """Delete offline files that no version younger than ``retention`` needs (those replaced
        by :meth:`compact` or by upserts longer ago than that).

        Time travel keeps working for every version within ``retention``; an older version whose
        files are gone raises ``NotFoundError`` when read.

        Args:
            retention: How long replaced files are kept (``timedelta(0)`` keeps only what the
                latest version needs).

        Returns:
            How many files were deleted.
        """
        external.refuse(self, "be vacuumed")  # type: ignore[arg-type]  # a FeatureGroup
        if not isinstance(retention, timedelta) or retention < timedelta(0):
            raise ValidationError(
                f"retention must be a timedelta >= 0 such as timedelta(days=7), got {retention!r}"
            )
        previous = self.latest_commit_version()
        if previous is None:
            return 0
        with commit.writing(self):  # type: ignore[arg-type]  # a FeatureGroup
            removed = self._project.backends.offline.vacuum(self.table_name, retention)
            version = self.latest_commit_version()
            if version is not None and version != previous:  # Delta records a vacuum as commits
                self._record_maintenance(previous, version, "vacuum")
        return removed

    def _record_maintenance(self, previous: int, version: int, operation: str) -> None:
        """Record the commits after ``previous`` up to ``version``, which changed no row (a
        vacuum is two Delta commits), with the statistics of ``previous`` (and its statistics
        state, so the next append still merges instead of rescanning); an online store that was
        up to date with ``previous`` only moves its mark to ``version`` (nothing to re-materialize)."""
        stats = group_statistics.carry(self, previous, version)  # type: ignore[arg-type]  # a FeatureGroup
        for each in range(previous + 1, version + 1):
            commit.record(self, each, operation, 0, "none", None, stats)  # type: ignore[arg-type]
        if not self.online_enabled:
            return
        online = self._project.backends.online
        if online.applied_version(self.table_name) == previous:
            import pyarrow as pa

            online.write(
                self.table_name,
                pa.schema([pa.field(k, pa.int64()) for k in self.primary_key]).empty_table(),
                key_columns=self.primary_key,
                event_time=None,
                version=version,
            )
