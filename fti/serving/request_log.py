"""Inference logging: every prediction appended, in batches, to ``<deployment>_inference_log``.

The request path only puts a record into a bounded in-memory buffer (``put_nowait``): when the
buffer is full the record is dropped, counted (``fti_inference_log_dropped``) and a warning is
logged at most every ten seconds — the request never waits. A writer thread flushes the buffer
every ``flush_interval_s`` (or sooner when busy) as one append per deployment.
Monitoring reads these tables: one row per predicted row with the request id, time, model
name/version, the model's input features (after enrichment) and its outputs. The log is
append-only: a client that reuses a request id gets several rows with that id.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti._buffers import strings_to_arrow, to_arrow
from fti.errors import FtiError

if TYPE_CHECKING:
    import numpy as np

    from fti.project import Project
    from fti.serving.metrics import ServerMetrics

log = logging.getLogger("fti.serving.request_log")

LOG_SUFFIX = "_inference_log"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def log_group_name(deployment: str) -> str:
    return f"{deployment}{LOG_SUFFIX}"


@dataclass(frozen=True)
class InferenceRecord:
    """One inference request as logged."""

    deployment: str
    model_name: str
    model_version: int
    request_id: str
    timestamp: datetime
    feature_names: list[str]
    features: Any  # 2-D array, one row per predicted row
    outputs: dict[str, np.ndarray]


class RequestLogger:
    """Buffer inference records and append them to the inference-log feature groups.

    Args:
        project: Where the feature groups live.
        metrics: Counts written and dropped rows.
        capacity: Most buffered requests; more are dropped (never blocking). A quarter of it
            (at most 10,000 requests) triggers a flush before ``flush_interval_s`` is over.
        flush_interval_s: How often the writer thread inserts what is buffered.
    """

    def __init__(
        self,
        project: Project,
        metrics: ServerMetrics,
        *,
        capacity: int = 100_000,
        flush_interval_s: float = 1.0,
    ) -> None:
        self._project = project
        self._metrics = metrics
        self._queue: queue.Queue[InferenceRecord] = queue.Queue(maxsize=capacity)
        self._flush_interval_s = flush_interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pending = 0
        self._flush_requests = max(1, min(10_000, capacity // 4))
        self._thread: threading.Thread | None = None
        self._last_warning = 0.0
        self._groups: dict[str, Any] = {}
        self.dropped = 0
        self.written = 0
        self._frozen = False

    def start(self) -> None:
        # import what the writer needs now, before the server freezes the startup objects out
        # of the garbage collector's sight (see fti.serving.app)
        import deltalake  # noqa: F401
        import pyarrow  # noqa: F401

        from fti.features import ingestion  # noqa: F401

        self._thread = threading.Thread(target=self._run, name="fti-inference-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Flush what is buffered and stop the writer thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def log(self, record: InferenceRecord) -> None:
        """Buffer ``record``; drop it with a counter and a warning if the buffer is full."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._drop(record, "the inference-log buffer is full")
            return
        self._pending += 1
        if self._pending >= self._flush_requests:  # busy: flush before the interval is over
            self._pending = 0
            self._wake.set()

    def _drop(self, record: InferenceRecord, why: str) -> None:
        rows = len(record.features)
        self.dropped += rows
        self._metrics.log_dropped.labels(record.deployment).inc(rows)
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.warning("dropped inference-log rows of %s: %s", record.deployment, why)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Insert everything buffered (one insert per deployment)."""
        records: list[InferenceRecord] = []
        while True:
            try:
                records.append(self._queue.get_nowait())
            except queue.Empty:
                break
        by_deployment: dict[str, list[InferenceRecord]] = {}
        for record in records:
            by_deployment.setdefault(record.deployment, []).append(record)
        for deployment, items in by_deployment.items():
            try:
                self._write(deployment, items)
            except FtiError as exc:  # e.g. a new model version with other features: keep serving
                for record in items:
                    self._drop(record, exc.message)
            except Exception as exc:
                log.exception("inference log write failed for %s", deployment)
                for record in items:
                    self._drop(record, f"{type(exc).__name__}: {exc}")

    def _group(self, deployment: str) -> Any:
        group = self._groups.get(deployment)
        if group is None:
            group = self._project.feature_store.get_or_create_feature_group(
                log_group_name(deployment),
                1,
                primary_key=["request_id", "row"],
                event_time="timestamp",
                description=f"Inference log of deployment {deployment!r} (written by the model server).",
            )
            self._groups[deployment] = group
        return group

    def _write(self, deployment: str, records: list[InferenceRecord]) -> None:
        frame = to_frame(records)
        append_log_rows(self._group(deployment), frame)
        self.written += len(frame)
        self._metrics.log_written.labels(deployment).inc(len(frame))
        if not self._frozen and not self._stop.is_set():  # the first write loaded more library state
            gc.freeze()
            self._frozen = True


def append_log_rows(group: Any, frame: Any) -> int:
    """Append rows to an inference-log group: checked against its schema like any insert, written
    as a plain Delta append without whole-table statistics, so a flush costs in proportion to the
    flush, not to the log. :func:`to_frame` makes the keys unique (one row per request id and row
    number), so the duplicate check is skipped: a large flush needs no query engine."""
    return int(group.insert_stream([frame], "none", write_mode="append", unique_keys=True).version)


def to_frame(records: list[InferenceRecord]) -> Any:
    """A pyarrow Table with one row per predicted row: ids, time, model, features, outputs
    (k-wide outputs as ``name_j``). A request id seen twice in one flush keeps its last record.

    Built column-wise from numpy buffers (no pandas): the writer thread shares the GIL with the
    event loop, so a flush must stay short, and an idle server should not hold pandas in memory
    (``pa.array`` imports it on first use; ``Array.from_buffers`` does not).
    """
    import numpy as np
    import pyarrow as pa

    latest: dict[str, InferenceRecord] = {}
    for record in records:
        latest.pop(record.request_id, None)  # re-insert: keeps arrival order of the last one
        latest[record.request_id] = record
    first = next(iter(latest.values()))
    kept = [
        r
        for r in latest.values()
        if r.feature_names == first.feature_names and r.outputs.keys() == first.outputs.keys()
    ]  # a model swap mid-flush changed the columns: the rest is written by the next flush's kind
    counts = np.array([len(r.features) for r in kept], dtype=np.int64)
    owner = to_arrow(np.repeat(np.arange(len(kept), dtype=np.int64), counts))  # record of each row
    micros = np.array([(r.timestamp - _EPOCH) // _MICROSECOND for r in kept], dtype=np.int64)
    columns: dict[str, Any] = {
        "request_id": strings_to_arrow([r.request_id for r in kept]).take(owner),
        "row": to_arrow(np.concatenate([np.arange(n, dtype=np.int64) for n in counts])),
        "timestamp": to_arrow(np.repeat(micros, counts), pa.timestamp("us", tz="UTC")),
        "model_name": strings_to_arrow([r.model_name for r in kept]).take(owner),
        "model_version": to_arrow(np.repeat(np.array([r.model_version for r in kept], np.int64), counts)),
    }
    features = np.concatenate([np.asarray(r.features).reshape(len(r.features), -1) for r in kept])
    for j, name in enumerate(first.feature_names):
        column = features[:, j]
        columns[name] = _column(column)
    for name, sample in first.outputs.items():
        values = np.concatenate([np.asarray(r.outputs[name]).reshape(len(r.features), -1) for r in kept])
        if np.asarray(sample).ndim == 1:
            columns[name] = _column(values[:, 0])
        else:
            for j in range(values.shape[1]):
                columns[f"{name}_{j}"] = _column(values[:, j])
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def _column(values: np.ndarray) -> Any:
    """One numpy column as Arrow: text (object or string dtypes) as strings, the rest as is."""
    return strings_to_arrow(values.astype(str).tolist()) if values.dtype.kind in "OUS" else to_arrow(values)
