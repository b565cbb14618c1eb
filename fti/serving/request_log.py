"""Inference logging: every prediction appended, in batches, to ``<deployment>_inference_log``.

The request path only appends a record — a tuple of references to the request's already
decoded input matrix and outputs, no copy — to a bounded in-memory buffer (a ``deque``: no lock,
no condition variable); when the buffer is full the record is dropped, counted
(``fti_inference_log_dropped``) and a warning is logged at most every ten seconds — the request
never waits. A writer thread flushes the buffer every ``flush_interval_s`` (or sooner when busy)
as one append per deployment: building the Arrow columns, the Delta commit and the catalog record
all happen there. A record is buffered as a plain tuple of untracked objects (strings, numbers, arrays,
a tuple of names), so the garbage collector stops tracking it in its young generations instead of
promoting thousands of buffered records into the old generation and walking them in full
collections (pauses on the request path).
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
deployment's columns change (a new model version with other features), the logger writes to the
next version of the log group instead of dropping rows; monitors read every version.

Compaction: each flush is one Delta commit, so the writer thread compacts a log's small files
(``fg.compact()``) every ``compact_interval_s`` once it has written ``compact_min_commits``
commits, and removes the files compaction replaced after ``vacuum_retention`` (``fg.vacuum``);
time travel keeps working within that retention.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import TYPE_CHECKING, Any, NamedTuple

from fti._buffers import strings_to_arrow, to_arrow, values_to_arrow
from fti.errors import FtiError

if TYPE_CHECKING:
    import numpy as np

    from fti.project import Project
    from fti.serving.metrics import ServerMetrics

log = logging.getLogger("fti.serving.request_log")

LOG_SUFFIX = "_inference_log"
LOG_PRIMARY_KEY = ("request_id", "row")
LOG_EVENT_TIME = "timestamp"
LOG_COLUMNS = ("request_id", "row", "timestamp", "model_name", "model_version", "variant")
"""The columns every inference log starts with; the inputs and outputs follow."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def log_group_name(deployment: str) -> str:
    return f"{deployment}{LOG_SUFFIX}"


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

    @property
    def input_names(self) -> list[str]:
        return list(self.inputs.names if self.inputs is not None else self.feature_names)


class RequestLogger:
    """Buffer inference records and append them to the inference-log feature groups.

    Args:
        project: Where the feature groups live.
        metrics: Counts written and dropped rows.
        capacity: Most buffered requests; more are dropped (never blocking). A quarter of it
            (at most 10,000 requests) triggers a flush before ``flush_interval_s`` is over.
        flush_interval_s: How often the writer thread inserts what is buffered.
        compact_interval_s: How often the writer thread compacts the log groups it wrote to.
        compact_min_commits: Compact a log only once it has this many commits since the last
            compaction.
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
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pending = 0
        self._flush_requests = max(1, min(10_000, capacity // 4))
        self._thread: threading.Thread | None = None
        self._last_warning = 0.0
        self._groups: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._compact_interval_s = compact_interval_s
        self._compact_min_commits = compact_min_commits
        self._vacuum_retention = vacuum_retention
        self._commits: dict[tuple[str, int], int] = {}  # (log group, version) -> commits since compaction
        self._last_compaction = time.monotonic()
        self.dropped = 0
        self.written = 0
        self.compactions = 0
        self._frozen = False

    def start(self) -> None:
        # What the writer needs (Arrow, delta-rs, the feature store: ~0.3 s) is imported by its
        # first flush, after the server's first predictions rather than before its models load;
        # that flush then freezes the objects they made out of the collector's sight (_write).
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
        if len(self._buffer) >= self._capacity:
            self._drop(record, "the inference-log buffer is full")
            return
        # one flat tuple (the outputs as name, array, name, array...): the collector untracks a
        # tuple only once its items are untracked, one nesting level per pass, so a nested
        # record would reach the old generation still tracked
        self._buffer.append(
            (*record[:7], record.inputs, record.variant, *chain.from_iterable(record.outputs.items()))
        )
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
            cpu = time.thread_time()
            try:
                self.flush()
            finally:
                self._metrics.log_flush_cpu.inc(time.thread_time() - cpu)
            if time.monotonic() - self._last_compaction >= self._compact_interval_s:
                self.compact()
        self.flush()

    def compact(self) -> int:
        """Compact (and vacuum) the logs written to since their last compaction that have at
        least ``compact_min_commits`` commits; returns how many were compacted. A failure is
        logged, never raised: logging goes on with more, smaller files."""
        self._last_compaction = time.monotonic()
        done = 0
        for group in {id(g): g for g in self._groups.values()}.values():
            key = (group.name, group.version)
            if self._commits.get(key, 0) < self._compact_min_commits:
                continue
            try:
                group.compact()
                group.vacuum(self._vacuum_retention)
            except Exception:
                log.exception("compacting the inference log %s v%s failed", group.name, group.version)
                continue
            self._commits[key] = 0
            done += 1
        self.compactions += done
        return done

    def flush(self) -> None:
        """Insert everything buffered (one insert per deployment)."""
        records: list[InferenceRecord] = []
        take = self._buffer.popleft
        while True:  # popleft, not a swap of buffers: a request may be appending right now
            try:
                item = take()
                outputs = dict(zip(item[9::2], item[10::2], strict=True))
                records.append(InferenceRecord._make((*item[:7], outputs, item[7], item[8])))
            except IndexError:
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

    def _group(self, deployment: str, columns: tuple[str, ...]) -> Any:
        """The log group version whose schema has exactly ``columns`` (or has none yet); a new
        version when no version fits."""
        key = (deployment, columns)
        group = self._groups.get(key)
        if group is None:
            group = find_log_group(self._project, deployment, columns)
            if group is None:
                fs = self._project.feature_store
                name = log_group_name(deployment)
                versions = [g.version for g in fs.list_feature_groups() if g.name == name]
                version = max(versions, default=0) + 1
                if versions:
                    log.warning(
                        "the inputs or outputs of deployment %s changed: logging to %s version %s",
                        deployment,
                        name,
                        version,
                    )
                group = fs.get_or_create_feature_group(
                    name,
                    version,
                    primary_key=list(LOG_PRIMARY_KEY),
                    event_time=LOG_EVENT_TIME,
                    description=f"Inference log of deployment {deployment!r} (written by the model server).",
                )
            self._groups[key] = group
        return group

    def _write(self, deployment: str, records: list[InferenceRecord]) -> None:
        for frame in to_frames(records):
            group = self._group(deployment, tuple(frame.column_names))
            append_log_rows(group, frame)
            commits = (group.name, group.version)
            self._commits[commits] = self._commits.get(commits, 0) + 1
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


def find_log_group(project: Project, deployment: str, columns: tuple[str, ...]) -> Any:
    """The newest version of ``deployment``'s log group whose columns are exactly ``columns`` (or
    that has no schema yet), or None."""
    fs = project.feature_store
    name = log_group_name(deployment)
    for group in sorted((g for g in fs.list_feature_groups() if g.name == name), key=lambda g: -g.version):
        features = group.features
        if features is None or tuple(f.name for f in features) == columns:
            return group
    return None


def to_frames(records: list[InferenceRecord]) -> list[Any]:
    """:func:`to_frame` of each run of records with the same columns (a model swap mid-flush
    changes them), in arrival order of each kind's first record."""
    kinds: dict[tuple[Any, ...], list[InferenceRecord]] = {}
    for record in records:
        kinds.setdefault((tuple(record.input_names), tuple(record.outputs)), []).append(record)
    return [to_frame(items) for items in kinds.values()]


def to_frame(records: list[InferenceRecord]) -> Any:
    """A pyarrow Table with one row per predicted row: ids, time, model, variant, inputs, outputs
    (k-wide outputs as ``name_j``). A request id seen twice in one flush keeps its last record.
    Records whose columns differ from the first one's are left out (see :func:`to_frames`).

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
        if r.input_names == first.input_names and r.outputs.keys() == first.outputs.keys()
    ]
    counts = np.array([len(r.features) for r in kept], dtype=np.int64)
    owner = to_arrow(np.repeat(np.arange(len(kept), dtype=np.int64), counts))  # record of each row
    micros = np.array([(r.timestamp - _EPOCH) // _MICROSECOND for r in kept], dtype=np.int64)
    total = int(counts.sum())
    variants = [r.variant for r in kept]
    columns: dict[str, Any] = {
        "request_id": strings_to_arrow([r.request_id for r in kept]).take(owner),
        "row": to_arrow(np.concatenate([np.arange(n, dtype=np.int64) for n in counts])),
        "timestamp": to_arrow(np.repeat(micros, counts), pa.timestamp("us", tz="UTC")),
        "model_name": strings_to_arrow([r.model_name for r in kept]).take(owner),
        "model_version": to_arrow(np.repeat(np.array([r.model_version for r in kept], np.int64), counts)),
        "variant": (
            pa.nulls(total, pa.string())
            if all(v is None for v in variants)
            else values_to_arrow(variants, pa.string()).take(owner)
        ),
    }
    if first.inputs is not None:
        for j, name in enumerate(first.inputs.names):
            logged = [v for r in kept for v in r.inputs.columns[j]]  # type: ignore[union-attr]
            columns[name] = _values(logged, first.inputs.dtypes[j])
    else:
        features = np.concatenate([np.asarray(r.features).reshape(len(r.features), -1) for r in kept])
        for j, name in enumerate(first.feature_names):
            columns[name] = _column(features[:, j])
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


def _values(values: list[Any], dtype: str | None) -> Any:
    """A list of Python values (None for missing) as a nullable Arrow column of ``dtype``
    (inferred from the first value when None)."""
    import pyarrow as pa

    from fti.types import arrow_type

    if dtype is None:
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, bool):
            dtype = "bool"
        elif isinstance(sample, int):
            dtype = "int64"
        elif isinstance(sample, float) or sample is None:
            dtype = "float64"
        elif isinstance(sample, datetime):
            dtype = "timestamp"
        else:
            dtype = "string"
    kind = arrow_type(dtype)
    if pa.types.is_floating(kind):  # a float feature's missing value may be NaN or None
        values = [None if v is None or v != v else v for v in values]
    return values_to_arrow(values, kind)
