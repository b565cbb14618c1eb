"""Committing pushed rows to the offline store in micro-batches, and replaying them after a crash.

One :class:`Committer` per process and project drains the project's topics of the push buffer
(:mod:`fti.storage.buffer`): a topic is committed when it holds ``every_rows`` rows or its oldest
entry is ``every_seconds`` old. A micro-batch is the oldest entries of a topic, decoded, the last
row per (primary key, event time) kept, and written with the feature group's own insert path
(``fg.insert(..., write_mode="upsert")``: checked, one Delta commit with ConflictError retries,
recorded in the catalog, applied online); the entries are removed from the buffer only after
that commit. A crash between the two replays them, which the upsert makes harmless.

Only the holder of the project's committer lease in the buffer commits (a SQLite buffer's lease
dies with its process; a Redis lease expires ``lease_ttl`` after its holder stopped renewing it),
so a server, a stream pipeline and a notebook pushing into one project never commit the same
entries twice at once. Entries that can never be committed (their rows no longer match a changed
group) are moved to the topic ``<topic>~dead`` and logged, rather than blocking the topic.

The model server and stream pipelines start a committer explicitly (:func:`start`); a process
that pushes without one gets one on its first push, stopped (after a last commit) by
``project.close()`` or at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fti.errors import FtiError, SchemaError, ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features._project import FeatureProject
    from fti.features.feature_group import FeatureGroup
    from fti.storage.buffer.base import BufferEntry

log = logging.getLogger("fti.streaming")

DEAD_SUFFIX = "~dead"
MAX_BATCH_ROWS = 1_000_000


@dataclass(frozen=True)
class Committed:
    """One micro-batch written to a feature group's offline table."""

    feature_group: str
    version: int
    rows: int
    """Rows written: one per (primary key, event time) of the pushed rows."""
    entries: int


class Committer:
    """Drains the push buffer of ``project`` into the offline store.

    Args:
        project: The project whose feature groups' topics are committed.
        every_rows: Commit a topic once it holds this many rows...
        every_seconds: ...or once its oldest entry is this old.
        lease_ttl: Seconds the committer lease lasts without renewal (the loop renews it).
    """

    def __init__(
        self,
        project: FeatureProject,
        *,
        every_rows: int = 10_000,
        every_seconds: float = 5.0,
        lease_ttl: float = 15.0,
    ) -> None:
        if isinstance(every_rows, bool) or not isinstance(every_rows, int) or every_rows < 1:
            raise ValidationError(f"every_rows must be an integer >= 1, got {every_rows!r}")
        for label, value in (("every_seconds", every_seconds), ("lease_ttl", lease_ttl)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValidationError(f"{label} must be a positive number of seconds, got {value!r}")
        self.project = project
        self.every_rows = every_rows
        self.every_seconds = float(every_seconds)
        self.lease_ttl = float(lease_ttl)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lease = f"commit-{project.name}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._groups: dict[str, tuple[str, int]] = {}  # topic -> (group name, version)
        self._commit_lock = threading.Lock()
        self.failures = 0
        """Consecutive failed rounds (reset by a round that fails nothing)."""

    # --- the loop -------------------------------------------------------------------------------
    def start(self) -> Committer:
        """Run :meth:`commit` in a daemon thread until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fti-push-committer", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Check the buffer now (new rows were pushed)."""
        self._wake.set()

    def stop(self, *, flush: bool = True) -> None:
        """Stop the loop; with ``flush``, commit everything buffered first (if we hold the lease)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if flush:
            try:
                self.commit(force=True)
            except FtiError as exc:  # the entries stay buffered for the next committer
                log.warning("pushed rows were not committed at shutdown (they stay buffered): %s", exc)
        self.project.backends.buffer.release(self._lease, self.holder)

    def _run(self) -> None:
        pause = min(self.every_seconds / 4, 0.5)
        while not self._stop.is_set():
            try:
                self.commit()
                self.failures = 0
            except Exception as exc:  # keep the loop alive; entries stay buffered
                self.failures += 1
                backoff = min(pause * 2**self.failures, 30.0)
                log.warning("committing pushed rows failed (retry in %.1fs): %s", backoff, exc)
                self._stop.wait(backoff)
            self._wake.wait(pause)
            self._wake.clear()

    # --- one round ------------------------------------------------------------------------------
    def commit(self, *, force: bool = False, topic: str | None = None) -> list[Committed]:
        """Commit every due topic of the project (every non-empty one with ``force``), or only
        ``topic``, once.

        Returns what was committed; nothing when another process holds the committer lease.
        """
        buffer = self.project.backends.buffer
        if not buffer.acquire(self._lease, self.holder, self.lease_ttl):
            return []
        done: list[Committed] = []
        topics = [topic] if topic is not None else buffer.topics(f"{self.project.name}__")
        with self._commit_lock:
            for topic in topics:
                group = self._group(topic)
                if group is None:
                    continue
                stats = buffer.stats(topic)
                due = force or stats.rows >= self.every_rows
                if not due and stats.oldest is not None:
                    due = time.time() - stats.oldest.timestamp() >= self.every_seconds
                while due:
                    committed = self._commit_topic(group, topic)
                    if committed is None:
                        break
                    done.append(committed)
                    due = buffer.stats(topic).rows >= (1 if force else self.every_rows)
        return done

    def _group(self, topic: str) -> FeatureGroup | None:
        """The group of ``topic``, read afresh (its schema may have changed since the push)."""
        from fti.errors import NotFoundError

        store = self.project.feature_store
        found = self._groups.get(topic)
        if found is None:  # a new group (or a deleted one): look again
            self._groups = {fg.table_name: (fg.name, fg.version) for fg in store.list_feature_groups()}
            found = self._groups.get(topic)
            if found is None:
                return None
        try:
            return store.get_feature_group(*found)
        except NotFoundError:
            self._groups.pop(topic, None)
            return None

    def _commit_topic(self, group: FeatureGroup, topic: str) -> Committed | None:
        buffer = self.project.backends.buffer
        entries: list[BufferEntry] = []
        rows = 0
        for entry in buffer.read(topic, limit=10_000):
            if entries and rows + entry.rows > MAX_BATCH_ROWS:
                break
            entries.append(entry)
            rows += entry.rows
        if not entries:
            return None
        try:
            version, written = self._insert(group, entries)
        except ValidationError as exc:  # includes SchemaError: these rows can never be committed
            if len(entries) == 1:
                self._bury(topic, entries[0], exc)
                return None
            for entry in entries:  # find the entries at fault; commit the others
                try:
                    self._insert(group, [entry])
                except ValidationError as single:
                    self._bury(topic, entry, single)
                else:
                    buffer.remove(topic, [entry.id])
            return None
        buffer.remove(topic, [e.id for e in entries])
        return Committed(group.name, version, written, len(entries))

    def _insert(self, group: FeatureGroup, entries: list[BufferEntry]) -> tuple[int, int]:
        table = micro_batch(group, entries)
        result = group.insert(table, validation="strict", write_mode="upsert", statistics=False)
        return result.version, result.rows

    def _bury(self, topic: str, entry: BufferEntry, exc: FtiError) -> None:
        buffer = self.project.backends.buffer
        buffer.append(topic + DEAD_SUFFIX, entry.payload, entry.rows)
        buffer.remove(topic, [entry.id])
        log.error(
            "pushed rows (buffer entry %s of %s, %d rows) can never be committed and were moved to %s: %s",
            entry.id,
            topic,
            entry.rows,
            topic + DEAD_SUFFIX,
            exc,
        )


def micro_batch(group: FeatureGroup, entries: list[BufferEntry]) -> pa.Table:
    """The rows of ``entries`` as one table in the group's current columns (features appended
    since they were pushed read as null), one row per (primary key, event time): the last pushed."""
    import pyarrow as pa

    from fti.streaming._tables import decode, last_per_key
    from fti.types import arrow_type

    try:
        tables = [decode(e.payload) for e in entries]
        table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # an entry that cannot be read or matched
        raise SchemaError(
            f"buffered rows of feature group {group.name!r} do not fit together: {exc}"
        ) from exc
    for feature in group.features or []:
        if feature.name not in table.column_names:
            table = table.append_column(
                pa.field(feature.name, arrow_type(feature.dtype)),
                pa.nulls(table.num_rows, arrow_type(feature.dtype)),
            )
    return last_per_key(table, group.key_columns)


# --- one committer per process and project ---------------------------------------------------------
_running: dict[int, Committer] = {}
_delegated: set[int] = set()
_lock = threading.Lock()


def start(
    project: FeatureProject,
    *,
    every_rows: int = 10_000,
    every_seconds: float = 5.0,
    lease_ttl: float = 15.0,
) -> Committer:
    """The project's committer in this process, started with these options if none runs yet."""
    with _lock:
        found = _running.get(id(project))
        if found is None:
            found = Committer(
                project, every_rows=every_rows, every_seconds=every_seconds, lease_ttl=lease_ttl
            ).start()
            _running[id(project)] = found
        return found


def notify(project: FeatureProject) -> None:
    """Rows were pushed: wake the project's committer in this process (starting one if needed,
    unless this process called :func:`delegate`)."""
    if id(project) in _delegated:
        return
    start(project).wake()


def delegate(project: FeatureProject) -> None:
    """Leave committing the rows this process pushes into ``project`` to another process (a
    stream service's committer process, :mod:`fti.pipelines.stream_committer`): pushes then
    start no committer here, so the commits' CPU and GIL time never delays the pushing loop."""
    _delegated.add(id(project))


def stop(project: FeatureProject, *, flush: bool = True) -> None:
    """Stop the project's committer in this process, if any (``project.close()`` calls this)."""
    with _lock:
        _delegated.discard(id(project))  # ids of closed projects are reused
        found = _running.pop(id(project), None)
    if found is not None:
        found.stop(flush=flush)


def running(project: FeatureProject) -> Committer | None:
    """The project's committer in this process, or None."""
    return _running.get(id(project))


@atexit.register
def _stop_all() -> None:
    for committer in list(_running.values()):
        try:
            stop(committer.project)
        except Exception as exc:  # at exit, report and carry on
            log.warning("pushed rows were not committed at exit (they stay buffered): %s", exc)
