"""Streaming writes of a feature group: ``fg.push`` and ``fg.commit_pushed`` (mixed into
:class:`~fti.features.feature_group.FeatureGroup`; the mechanism is :mod:`fti.streaming.push`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, ValidationError

if TYPE_CHECKING:
    from fti.features._project import FeatureProject
    from fti.streaming.push import PushResult


class Pushed:
    """Push and commit pushed rows; mixed into an entity with a project, a name and an offline table."""

    if TYPE_CHECKING:

        @property
        def project(self) -> FeatureProject: ...

        @property
        def name(self) -> str: ...

        @property
        def table_name(self) -> str: ...

    def push(self, rows: Any, *, validation: str = "strict") -> PushResult:
        """Write ``rows`` to the online store at once and to the offline table within seconds.

        The rows are checked like an :meth:`insert` (the group's schema, tz-aware event times,
        keys, the expectation suite) and appended to the project's durable push buffer before
        this returns; the latest row per key is then upserted online (for online-enabled
        groups), readable by ``online_lookup`` and ``get_feature_vector`` at once. The buffer is
        committed to the offline table in micro-batches (every N rows or T seconds) by the
        project's committer: the model server's, a stream pipeline's, or one this process starts
        on its first push and stops (after a last commit) at ``project.close()``. A crash loses
        nothing that was acknowledged, and replays are idempotent by (primary key, event time).

        Args:
            rows: A pandas or polars DataFrame or a pyarrow Table with every feature of the group.
            validation: ``"strict"`` checks the expectation suite; ``"none"`` skips it.

        Raises:
            SchemaError: the group has no schema yet; missing, extra or incompatibly typed
                columns; naive timestamps.
            ValidationError: empty data, null keys, duplicate (key, event time) rows in ``rows``,
                an external group.
            ExpectationError: the suite rejected the rows (nothing was written).
        """
        from fti.streaming import push

        return push.push(self, rows, validation=validation)  # type: ignore[arg-type]

    def commit_pushed(self, timeout: float = 60.0) -> int:
        """Commit the rows pushed into this group so far to the offline table now.

        Returns the rows this call committed (0 when another process's committer, which holds
        the project's lease, committed them).

        Raises:
            BackendError: they are still buffered after ``timeout`` seconds (another committer
                holds the lease and has not committed them yet, or commits fail: see its log).
        """
        from fti.streaming import committer

        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise ValidationError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        started = time.time()
        deadline = time.monotonic() + timeout
        own = committer.start(self.project)
        rows = 0
        while True:
            rows += sum(c.rows for c in own.commit(force=True, topic=self.table_name))
            stats = self.project.backends.buffer.stats(self.table_name)
            if stats.oldest is None or stats.oldest.timestamp() > started:
                return rows
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"{stats.rows} pushed row(s) of feature group {self.name!r} are still waiting for "
                    f"their offline commit after {timeout:g}s; the project's committer (a model server "
                    "or stream pipeline) holds the lease: check its log"
                )
            time.sleep(0.05)
