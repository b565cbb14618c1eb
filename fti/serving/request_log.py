"""Inference logging: every prediction appended, in batches, to ``<deployment>_inference_log``.

Three steps, each off the request path of the one before:

1. A request appends one record - a flat tuple of references to its already decoded input
   matrix and outputs, no copy - to a bounded in-memory buffer (a ``deque``: no lock, no
   condition variable). A tuple of untracked objects is untracked by the garbage collector in
   its first pass, so thousands of buffered records are never walked by full collections.
2. Every ``handoff_interval_s`` (or sooner when busy) a thread of the server turns the buffer
   into Arrow tables column by column (:mod:`fti.serving.log_frames`, ~1-2 us per request) and
   writes them to the server's spool directory (:mod:`fti.serving.log_spool`).
3. A writer process (:mod:`fti.serving.log_writer`) commits the spooled rows every
   ``flush_interval_s``: one append per deployment and column layout, the catalog record,
   compaction (:mod:`fti.serving.log_committer`). None of that holds the server's GIL.

Bounds: the buffer holds ``capacity`` requests and the spool ``spool_max_bytes``. While the writer
is down or behind, rows wait in the spool; once the spool is full they wait in the buffer; once
the buffer is full a request's record is dropped, counted (``fti_inference_log_dropped``) and a
warning is logged at most every ten seconds - the request never waits. A writer that dies is
restarted (``fti_inference_log_writer_restarts``) and takes over the spool; rows on disk survive
the writer's crash and the server's (the next writer of the project adopts the directory). At a
clean stop the server hands off its buffer and the writer commits everything before it exits;
what it cannot commit in time the server commits itself.

Monitoring (:mod:`fti.monitoring`) reads these tables: one row per predicted row with

- ``request_id`` and ``row`` (the primary key) and ``timestamp`` (the event time: when it was
  predicted), ``model_name``, ``model_version`` and ``variant`` (the routing variant; null
  until a deployment routes between variants);
- the inputs: for an enriched deployment the request's primary-key column(s) and the
  **untransformed** feature values as served (looked up online, with passed features applied:
  drift is judged on the values as they are stored in the feature groups, and labels join on
  the key); for a plain deployment the signature's inputs as sent;
- the outputs (a k-wide output as ``name_0`` .. ``name_<k-1>``).

The log is append-only: a client that reuses a request id gets several rows with that id. When a
deployment's columns change (a new model version with other features), the writer appends to the
next version of the log group instead of dropping rows; monitors read every version.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import TYPE_CHECKING, Any, NamedTuple

from fti.serving.log_committer import LOG_EVENT_TIME, LOG_PRIMARY_KEY, LOG_SUFFIX, log_group_name

if TYPE_CHECKING:
    import numpy as np

    from fti.project import Project
    from fti.serving.log_committer import LogCommitter, Outcome
    from fti.serving.log_spool import Spool, SpoolFile
    from fti.serving.log_writer import WriterProcess
    from fti.serving.metrics import ServerMetrics

log = logging.getLogger("fti.serving.request_log")

LOG_COLUMNS = ("request_id", "row", "timestamp", "model_name", "model_version", "variant")
"""The columns every inference log starts with; the inputs and outputs follow."""
__all__ = ["LOG_COLUMNS", "LOG_EVENT_TIME", "LOG_PRIMARY_KEY", "LOG_SUFFIX", "log_group_name"]


@dataclass(frozen=True)
class LoggedInputs:
    """The inputs an enriched request is logged with: key columns, then untransformed features."""

    names: Sequence[str]
    columns: list[list[Any]]
    """One list of Python values (``None`` for missing) per name, one value per predicted row."""
    dtypes: Sequence[str | None]
    """fti dtype of each column (None: inferred from the values)."""


class InferenceRecord(NamedTuple):
    """One inference request as logged: references to what the request decoded and predicted
    (a tuple, cheap to make on the request path and untracked by the garbage collector)."""

    deployment: str
    model_name: str
    model_version: int
    request_id: str
    timestamp: datetime
    feature_names: Sequence[str]
    """The model's inputs in matrix order (the loaded model's shared tuple)."""
    features: Any  # 2-D array of the model's inputs, one row per predicted row
    outputs: dict[str, np.ndarray]
    inputs: LoggedInputs | None = None
    """Logged instead of ``features`` when given (enriched deployments: keys and raw values)."""
    variant: str | None = None


class RequestLogger:
    """Buffer inference records, spool them, and have a writer process commit them to the
    inference-log feature groups (see the module docs).

    A logger that is never started (tools, tests) commits in the caller's thread on
    :meth:`flush`.

    Args:
        project: Where the feature groups live (the spool is under its home).
        metrics: Counts written and dropped rows, the hand-off and writer CPU.
        capacity: Most buffered requests; more are dropped (never blocking).
        flush_interval_s: How often the spool's segments are closed and committed.
        handoff_interval_s: How often the buffer is spooled (short: each hand-off holds the GIL
            for its rows only).
        spool_max_bytes: Most bytes spooled and not yet committed; past it rows wait in the buffer.
        compact_interval_s: How often the writer compacts the log groups it wrote to.
        compact_min_commits: Compact a log only once it has this many commits since the last.
        vacuum_retention: Replaced files older than this are deleted after a compaction (time
            travel to older versions of the log stops working past it).
    """

    def __init__(
        self,
        project: Project,
        metrics: ServerMetrics,
        *,
        capacity: int = 100_000,
        flush_interval_s: float = 1.0,
        handoff_interval_s: float = 0.25,
        spool_max_bytes: int = 256 << 20,
        compact_interval_s: float = 3600.0,
        compact_min_commits: int = 10,
        vacuum_retention: timedelta = timedelta(days=7),
    ) -> None:
        self._project = project
        self._metrics = metrics
        # appends and pops of a deque are atomic: the request path takes no lock. It holds plain
        # tuples: the collector untracks an exact tuple of untracked items, not a NamedTuple
        self._buffer: deque[tuple[Any, ...]] = deque()
        self._capacity = capacity
        self._flush_interval_s = flush_interval_s
        self._handoff_interval_s = handoff_interval_s
        self._spool_max_bytes = spool_max_bytes
        self._compaction = (compact_interval_s, compact_min_commits, vacuum_retention)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pending = 0
        self._handoff_requests = max(1, min(1_000, capacity // 4))
        self._thread: threading.Thread | None = None
        self._handoff_lock = threading.Lock()
        self._spool: Spool | None = None
        self._spooled: dict[int, int] = {}  # file number -> bytes, until the writer reports it done
        self._spooled_bytes = 0
        self._done = threading.Condition()
        self._writer: WriterProcess | None = None
        self._writer_starts = 0
        self._writer_started = 0.0
        self._next_start = 0.0
        self._committer: LogCommitter | None = None
        self._leftovers = False
        self._last_warning = 0.0
        self.dropped = 0
        self.written = 0
        self._frozen = False

    # --- the request path ---------------------------------------------------------------------
    def log(self, record: InferenceRecord) -> None:
        """Buffer ``record``; drop it with a counter and a warning if the buffer is full."""
        if len(self._buffer) >= self._capacity:
            self._drop(record.deployment, len(record.features), "the inference-log buffer is full")
            return
        # one flat tuple (the outputs as name, array, name, array...): see log_frames.flat
        self._buffer.append(
            (*record[:7], record.inputs, record.variant, *chain.from_iterable(record.outputs.items()))
        )
        self._pending += 1
        if self._pending >= self._handoff_requests:  # busy: hand off before the interval is over
            self._pending = 0
            self._wake.set()

    def _drop(self, deployment: str, rows: int, why: str) -> None:
        self.dropped += rows
        self._metrics.log_dropped.labels(deployment).inc(rows)
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.warning("dropped inference-log rows of %s: %s", deployment, why)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the hand-off thread; the writer process starts once there is something to commit.

        Arrow (~0.1 s) is imported by the first hand-off, after the server's first predictions
        rather than before its models load; that hand-off then freezes the objects it made out
        of the collector's sight."""
        from fti.serving.log_spool import has_orphans

        spool = self._open_spool()
        # a server that died left rows in its spool: start a writer at once to adopt them
        self._leftovers = has_orphans(spool.directory.parent, exclude=spool.name)
        self._thread = threading.Thread(target=self._run, name="fti-inference-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Hand off what is buffered, have the writer commit everything and stop it; commit
        here whatever it could not."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self.handoff(close=True)
        if self._writer is not None:
            self._writer.stop(timeout)
        self._drain_here()
        if self._spool is not None:
            self._spool.close()

    def flush(self, timeout: float = 60.0) -> bool:
        """Commit everything logged so far: by the writer process when the logger was started
        (waiting up to ``timeout`` seconds for it), else here. True when nothing is left spooled."""
        if self._thread is None:
            self._drain_here()
            return not self._spooled and not self._buffer
        self.handoff(close=True)
        with self._done:  # the writer's reports change it from their own thread
            last = max(self._spooled, default=0)
        if self._writer is not None:
            self._writer.send("flush")
        deadline = time.monotonic() + timeout
        with self._done:
            while any(seq <= last for seq in self._spooled):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(min(left, 0.5))
        return True

    # --- the hand-off thread ------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._handoff_interval_s)
            self._wake.clear()
            cpu = time.thread_time()
            try:
                self.handoff()
            except Exception:
                log.exception("spooling inference-log rows failed")
            finally:
                self._metrics.log_flush_cpu.inc(time.thread_time() - cpu)
            self._supervise()

    def handoff(self, close: bool = False) -> int:
        """Spool the buffered records (as long as the spool has room) and close the segments
        that are ``flush_interval_s`` old (all with ``close``); returns the rows spooled."""
        from fti.serving.log_frames import frames

        rows = 0
        with self._handoff_lock:
            spool = self._spool
            if self._buffer:
                spool = self._open_spool()
                held = self._spooled_bytes + spool.open_bytes
                if held >= self._spool_max_bytes:
                    self._warn_full(held)
                else:
                    take = self._buffer.popleft
                    items = [take() for _ in range(len(self._buffer))]  # a request may append meanwhile
                    for deployment, table in frames(items):
                        try:
                            _, closed = spool.append(deployment, table)
                        except OSError as exc:  # a full or read-only disk: the rows cannot wait
                            self._drop(deployment, table.num_rows, f"spooling failed: {exc}")
                            continue
                        self._closed(closed)
                        rows += table.num_rows
            if spool is not None:
                self._closed(spool.rotate(0.0 if close else self._flush_interval_s))
                self._metrics.log_spooled_bytes.set(self._spooled_bytes + spool.open_bytes)
        if rows and not self._frozen and not self._stop.is_set():  # the first hand-off loaded more state
            gc.freeze()
            self._frozen = True
        return rows

    def _closed(self, files: list[SpoolFile]) -> None:
        """Count closed segments as spooled until the writer reports them done."""
        for file in files:
            size = file.size
            with self._done:
                self._spooled[file.seq] = size
                self._spooled_bytes += size

    def _warn_full(self, spooled: int) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.warning(
                "the inference-log spool holds %.0f MB not yet committed (its bound): rows wait in "
                "memory, then are dropped, until the writer catches up",
                spooled / 2**20,
            )

    def _open_spool(self) -> Spool:
        if self._spool is None:
            from fti.serving.log_spool import Spool, spool_root

            self._spool = Spool.create(spool_root(self._project.settings.home, self._project.name))
        return self._spool

    def _supervise(self) -> None:
        """Start the writer when there is something to commit, restart it when it died."""
        writer = self._writer
        if writer is not None and writer.running:
            return
        if writer is not None:
            self._writer = None
            self._metrics.log_writer_restarts.inc()
            log.warning(
                "the inference-log writer process (pid %s) exited with status %s: restarting it",
                writer.pid,
                writer.returncode,
            )
            # a writer that keeps dying is restarted at most every 30 s
            if time.monotonic() - self._writer_started > 60:  # it had been working: start afresh
                self._writer_starts = 0
            self._next_start = time.monotonic() + min(30.0, 0.5 * 2 ** min(self._writer_starts, 6))
        spooled = self._spooled or (self._spool is not None and self._spool.open_bytes) or self._leftovers
        if not spooled or time.monotonic() < self._next_start or self._stop.is_set():
            return
        from fti.serving.log_writer import WriterProcess, settings_payload

        assert self._spool is not None
        compact_interval_s, compact_min_commits, vacuum_retention = self._compaction
        options = {
            "settings": settings_payload(self._project),
            "project": self._project.name,
            "spool": str(self._spool.directory),
            "flush_interval_s": self._flush_interval_s,
            "log_level": logging.getLevelName(logging.getLogger("fti").getEffectiveLevel()).lower(),
            "compact_interval_s": compact_interval_s,
            "compact_min_commits": compact_min_commits,
            "vacuum_retention_s": vacuum_retention.total_seconds(),
        }
        try:
            self._writer = WriterProcess(options, self._report)
        except OSError as exc:
            log.error("cannot start the inference-log writer process: %s", exc)
            self._next_start = time.monotonic() + 5.0
            return
        self._writer_starts += 1
        self._writer_started = time.monotonic()
        self._leftovers = False

    # --- what the writer did --------------------------------------------------------------
    def _report(self, report: dict[str, Any]) -> None:
        """Account for one round of the writer (called on its reader thread, or here)."""
        for deployment, rows in report.get("written", {}).items():
            self.written += rows
            self._metrics.log_written.labels(deployment).inc(rows)
        for deployment, rows in report.get("dropped", {}).items():
            self._drop(deployment, rows, report.get("reasons", {}).get(deployment, "not committed"))
        for deployment in report.get("failed", {}):
            self._metrics.log_commit_errors.labels(deployment).inc()
        self._metrics.log_writer_cpu.inc(float(report.get("cpu", 0.0)))
        with self._done:
            for seq in report.get("done", ()):
                self._spooled_bytes -= self._spooled.pop(seq, 0)
            self._done.notify_all()

    def _drain_here(self) -> None:
        """Spool and commit in this process until the buffer is empty (a full spool leaves
        records in it), a commit fails or nothing moves."""
        while True:
            moved = self.handoff(close=True)
            committed = self._commit_here()
            if not self._buffer or self._spooled or not (moved or committed):
                return

    def _commit_here(self) -> int:
        """Commit the spool in this process (a logger that was never started, or what the
        writer left at shutdown): until it is empty or a commit fails. Returns the segments done."""
        from fti.serving.log_committer import LogCommitter

        spool = self._spool
        if spool is None or not spool.files(1) or not spool.writer.acquire(timeout=30):
            return 0
        if self._committer is None:
            compact_interval_s, compact_min_commits, vacuum_retention = self._compaction
            self._committer = LogCommitter(
                self._project,
                compact_interval_s=compact_interval_s,
                compact_min_commits=compact_min_commits,
                vacuum_retention=vacuum_retention,
            )
        cpu = time.thread_time()
        done = 0
        try:
            while spool.files(1):
                outcome = self._committer.commit(spool)
                self._report(_as_report(outcome))
                done += len(outcome.done)
                if outcome.failed:
                    break
        finally:
            spool.writer.release()
            self._metrics.log_flush_cpu.inc(time.thread_time() - cpu)
        return done

    def compact(self) -> int:
        """Compact the logs this (never started) logger committed to; see
        :meth:`~fti.serving.log_committer.LogCommitter.compact`."""
        return 0 if self._committer is None else self._committer.compact()


def _as_report(outcome: Outcome) -> dict[str, Any]:
    return {
        "done": outcome.done,
        "written": dict(outcome.written),
        "dropped": dict(outcome.dropped),
        "reasons": outcome.reasons,
        "failed": outcome.failed,
    }
