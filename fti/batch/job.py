"""A batch inference job: feature view batch data -> fastest verified scorer -> predictions group.

Memory stays bounded whatever the row count: the feature view's rows are joined point-in-time
and read as a stream of ``chunk_rows``-row batches, the spine batch by batch, each looking its rows
of the joined groups up (:meth:`~fti.features.feature_view.FeatureView.iter_batch_data`,
transformations exactly as in training and online serving). Reading, scoring and writing overlap, a few batches at a time: a
reader thread prefetches batch i+1 while the scorer's workers finish batch i-1 and start on batch
i, and a writer thread writes the predictions of the batch before. The first batch is read while
the scorer loads.

Predictions go to the output feature group (primary key and event time of the input rows,
``prediction``, one ``proba_<class>`` column per class for classifiers, ``model_name``,
``model_version``, ``scored_at``) through :meth:`~fti.features.feature_group.FeatureGroup.insert_stream`:
written as they are scored and committed once, at the end, so a failure while scoring commits
nothing; a group created by a run that was killed before its commit is removed by the next
run. When the group holds no row in the scored time range (a new group, or the next day of a
daily job) nothing can be replaced and the commit appends; otherwise it upserts by (primary key,
event time), so re-running a job converges to the same rows. Statistics of the predictions are
computed on demand.
"""

from __future__ import annotations

import queue
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fti._names import check_name
from fti.errors import ValidationError
from fti.types import ModelRef

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup
    from fti.features.feature_view import FeatureView
    from fti.inference.base import Scorer
    from fti.inference.parallel import ParallelScorer, Scores
    from fti.project import Project

DEFAULT_CHUNK_ROWS = 65_536
Progress = Callable[[int, int], None]
"""Called with (rows scored so far, total rows) after each window."""


@dataclass(frozen=True)
class BatchScoreResult:
    """What a batch scoring run did."""

    feature_group: FeatureGroup | None
    """The predictions group (None when the window held no rows and nothing was written)."""
    rows: int
    model_name: str
    model_version: int
    scorer: str
    """The scorer kind that ran (``native``, ``onnx``, ``compiled``, ``factorized``)."""
    commit_versions: list[int]
    """Offline commit versions of the predictions group written by this run (usually one)."""
    scored_at: datetime
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": None if self.feature_group is None else self.feature_group.name,
            "output_version": None if self.feature_group is None else self.feature_group.version,
            "rows": self.rows,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "scorer": self.scorer,
            "commit_versions": self.commit_versions,
            "scored_at": self.scored_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
        }


def score(
    project: Project,
    model: str | ModelRef,
    *,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    output: str,
    output_version: int = 1,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    prefer: str = "fastest",
    progress: Progress | None = None,
    engine: str = "duckdb",
) -> BatchScoreResult:
    """Score a registered model over its feature view's rows in ``[start_time, end_time)``.

    Args:
        project: The project holding the model and its feature view.
        model: ``"name@alias"`` (e.g. ``"fraud@production"``), ``"name"`` (latest version) or
            ``"name:3"`` (version 3); see :class:`fti.types.ModelRef`.
        start_time: Inclusive lower bound on the spine's event time (tz-aware; None = no bound).
        end_time: Exclusive upper bound (tz-aware; None = no bound).
        output: The predictions feature group, created on first use with the view's primary key
            and event time.
        output_version: Version of the predictions group.
        chunk_rows: About how many rows are read and scored at once (memory bound).
        prefer: Scorer choice, see :func:`fti.inference.get_scorer`, or ``"factorized"``: a
            linear model scored per row of the joined groups, without materializing the join
            (:mod:`fti.batch.factorized`, which ``"fastest"`` also picks when it wins).
        progress: Optional callback ``(rows_done, rows_total)``; without it, a progress bar is
            shown when someone watches (a terminal or a notebook, see :mod:`fti._progress`).
        engine: ``"duckdb"`` (this process: DuckDB join, threads) or ``"spark"``: the join and the
            scoring run on the executors of ``project.spark()``, each loading the model from the
            artifact store with the same verified scorer (:mod:`fti.spark.batch`).

    Returns:
        The predictions group, the row count, the model version and scorer used.

    Raises:
        ValidationError: bad times, names or chunk size; the model has no feature view.
        NotFoundError: unknown model, alias or version.
    """
    from fti import _progress

    options: dict[str, Any] = {
        "start_time": start_time,
        "end_time": end_time,
        "output": output,
        "output_version": output_version,
        "chunk_rows": chunk_rows,
        "prefer": prefer,
        "engine": engine,
    }
    if progress is not None or not _progress.enabled():
        return _score(project, model, progress=progress, **options)
    with _progress.task(f"scoring {model}", unit="rows") as bar:  # for whoever watches
        return _score(project, model, progress=bar.update, **options)


def _score(
    project: Project,
    model: str | ModelRef,
    *,
    start_time: datetime | None,
    end_time: datetime | None,
    output: str,
    output_version: int,
    chunk_rows: int,
    prefer: str,
    progress: Progress | None,
    engine: str,
) -> BatchScoreResult:
    started = time.perf_counter()
    check_name(output, "output feature group")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValidationError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    _check_times(start_time, end_time)
    from fti.inference.base import CLASSES_NOT_RECORDED
    from fti.inference.cache import ScorerCache
    from fti.inference.parallel import ParallelScorer
    from fti.inference.selection import BATCH_PREFER, TIMING_ROWS, check_prefer

    ref = ModelRef.parse(model)
    check_prefer(prefer, BATCH_PREFER)  # before a cached scorer could be taken without looking at it
    from fti.features.training_data import check_engine

    if check_engine(engine) == "spark" and prefer == "factorized":
        raise ValidationError("prefer='factorized' scores with engine='duckdb' only")

    version = project.model_registry.resolve(ref)
    fv = version.feature_view()
    if fv is None:
        raise ValidationError(
            f"model {version.name!r} version {version.version} was registered without a feature "
            "view, so batch scoring cannot read its inputs; register it with its feature view "
            "(e.g. run.log_model(..., feature_view=fv))"
        )
    _drop_abandoned(project, output, output_version)
    td_version = version.training_dataset_version
    columns = fv.feature_names(transformed=True, training_dataset_version=td_version)
    keys = fv.query.key_columns()
    scored_at = datetime.now(UTC)
    _check_spine_time(fv, start_time, end_time)
    if engine == "spark":
        from fti.spark import batch

        job = batch.Job(version, fv, start_time, end_time, output, output_version, chunk_rows, prefer)
        return batch.score(project, job, scored_at, started, progress)
    from fti.batch import factorized

    plan = factorized.plan(project, version, fv, prefer, start_time, end_time)
    total = _count(project, fv, start_time, end_time) if progress is not None else 0
    batches: Iterator[pa.Table] | None = None

    reader = ThreadPoolExecutor(1, thread_name_prefix="fti-batch-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="fti-batch-write")
    feed: queue.Queue[Any] = queue.Queue(maxsize=1)
    written: Future[Any] | None = None
    scorer: ParallelScorer | None = None
    created = False
    try:

        def load() -> tuple[pa.Table, np.ndarray] | None:
            nonlocal batches
            from fti.inference.matrix import to_matrix

            if batches is None:  # opened in the reader thread, while the scorer loads
                batches = (
                    plan.batches(start_time, end_time, chunk_rows)
                    if plan is not None
                    else fv.iter_batch_data(
                        start_time,
                        end_time,
                        batch_rows=chunk_rows,
                        with_keys=True,
                        training_dataset_version=td_version,
                    )
                )
            data = next(batches, None)
            inputs = columns if plan is None else plan.columns
            return None if data is None else (data.select(keys), to_matrix(data, inputs))

        # the first batch is read while a cached scorer is rebuilt or the native model loads;
        # without a cached scorer, the first rows of that batch verify and time the candidates
        pending = reader.submit(load)
        cache = ScorerCache.at_home(project.settings.home)
        # a converted winner cached with the model's classes runs without loading the native model
        # (the model's artifacts are still checked against their digests)
        chosen: Scorer | None = plan.scorer if plan is not None else None
        if plan is None and prefer != "native":
            chosen = cache.load(version, prefer=prefer)
        classes = getattr(chosen, "classes", CLASSES_NOT_RECORDED)
        if classes is CLASSES_NOT_RECORDED:  # a manifest without classes: the model names them
            chosen = None
        native = version.load() if chosen is None else None
        current = pending.result()
        if current is None or not len(current[1]):
            return BatchScoreResult(
                None, 0, version.name, version.version, "none", [], scored_at, time.perf_counter() - started
            )
        if chosen is None:
            # the candidates are verified on the first rows of the batch (topped up with training
            # rows when it is short) and timed on up to TIMING_ROWS of them (winner cached)
            rows = current[1]
            chosen = cache.build(version, native, prefer=prefer, rows=rows, timing_sample=rows[:TIMING_ROWS])
            classes = getattr(native, "classes_", None)
        scorer = ParallelScorer(chosen)  # one single-threaded worker per core
        constants = constant_columns(version, scored_at, chunk_rows)
        group: FeatureGroup | None = None
        done = 0

        def emit(keys_table: pa.Table, scores: Scores) -> None:
            """Turn a batch's scores into predictions and hand them to the writer."""
            nonlocal group, created, written, done
            outputs = scores.result()
            names = output_columns(outputs, None if classes is None else list(classes))
            table = predictions(keys_table, keys, outputs, names, constants)
            if group is None:  # the first predictions fix the output's schema
                group, created = output_group(project, output, output_version, keys, fv, version, table)
                mode = "append" if range_is_empty(project, group, start_time, end_time) else "upsert"
                # keyed by the spine's rows, which its group keeps unique
                written = writer.submit(
                    group.insert_stream, _drain(feed), "none", write_mode=mode, unique_keys=True
                )
            _hand_over(feed, table, written)
            done += table.num_rows
            if progress is not None:
                progress(done, max(total, done))

        # Two batches are scored at a time: the workers start on the pieces of batch i while
        # the last pieces of batch i-1 finish, so no core waits for the slowest piece of a batch.
        scoring: deque[tuple[pa.Table, Scores]] = deque()
        while current is not None:
            pending = reader.submit(load)
            scoring.append((current[0], scorer.submit(current[1])))
            if len(scoring) > 1:
                emit(*scoring.popleft())
            current = pending.result()
        while scoring:
            emit(*scoring.popleft())
        assert group is not None and written is not None
        _hand_over(feed, _END, written)
        commit = written.result()
    except BaseException:
        if written is not None:  # stop the writer without committing, then drop what this run created
            _hand_over(feed, _ABORT, written)
            written.exception()
            if created and group is not None:
                group.delete()
        raise
    finally:
        if scorer is not None:
            scorer.close()
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # stops the feature view's query when scoring failed midway
    return BatchScoreResult(
        group,
        done,
        version.name,
        version.version,
        scorer.kind,
        [commit.version],
        scored_at,
        time.perf_counter() - started,
    )


_END = object()
_ABORT = object()


class _Aborted(Exception):
    """Scoring failed: the predictions stream stops and nothing is committed."""


def _drain(feed: queue.Queue[Any]) -> Iterator[pa.Table]:
    """The predictions tables handed over by the scoring loop, until it ends or aborts."""
    while True:
        item = feed.get()
        if item is _END:
            return
        if item is _ABORT:
            raise _Aborted("batch scoring failed; nothing was committed")
        yield item


def _hand_over(feed: queue.Queue[Any], item: Any, writer: Future[Any] | None) -> None:
    """Put ``item`` on the writer's feed, unless the writer has stopped (its error is raised)."""
    while True:
        try:
            feed.put(item, timeout=0.1)
            return
        except queue.Full:
            if writer is not None and writer.done():
                if item is not _ABORT:
                    writer.result()  # raises the writer's error
                return


_DESCRIPTION = "batch predictions of model {model!r} over feature view {view!r}"


def _drop_abandoned(project: Project, output: str, version: int) -> None:
    """Delete the predictions group a killed run created and never committed to (no schema, no
    commit, the description batch scoring gives the groups it creates); this run makes it anew.
    A run that fails cleanly deletes such a group itself."""
    from fti.errors import NotFoundError

    try:
        group = project.feature_store.get_feature_group(output, version)
    except NotFoundError:
        return
    ours = group.description.startswith(_DESCRIPTION.split("{", 1)[0])
    if ours and group.features is None and group.latest_commit_version() is None and not group.commits():
        group.delete()


def output_group(
    project: Project, output: str, version: int, keys: list[str], fv: FeatureView, model: Any, table: pa.Table
) -> tuple[FeatureGroup, bool]:
    """The predictions group and whether this run created it; an existing group must have the
    view's keys and the columns of ``table`` (checked before anything is written)."""
    from fti.errors import AlreadyExistsError, NotFoundError, SchemaError
    from fti.types import dtype_of

    try:
        group = project.feature_store.get_feature_group(output, version)
    except NotFoundError:
        created = project.feature_store.get_or_create_feature_group(
            output,
            version,
            primary_key=fv.primary_key,
            event_time=fv.event_time,
            description=_DESCRIPTION.format(model=model.name, view=fv.name),
        )
        return created, True
    if group.primary_key != list(fv.primary_key) or group.event_time != fv.event_time:
        raise AlreadyExistsError(
            f"feature group {output!r} version {version} has primary key {group.primary_key} and event "
            f"time {group.event_time!r}, but predictions of this model are keyed by {keys}; choose "
            "another output name or version"
        )
    if group.features is not None:
        stored = {f.name: f.dtype for f in group.features}
        given = {field.name: dtype_of(field.type) for field in table.schema}
        if stored != given:
            raise SchemaError(
                f"feature group {output!r} version {version} holds columns {stored}, but this model's "
                f"predictions have {given}; write them to another output name or version"
            )
    return group, False


def _check_times(start_time: datetime | None, end_time: datetime | None) -> None:
    for label, value in (("start_time", start_time), ("end_time", end_time)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValidationError(
                f"{label} must be a tz-aware datetime or None, got {value!r} "
                "(e.g. datetime(2024, 1, 1, tzinfo=UTC))"
            )
    if start_time is not None and end_time is not None and not start_time < end_time:
        raise ValidationError(
            f"start_time {start_time.isoformat()} must be before end_time {end_time.isoformat()}"
        )


def _check_spine_time(fv: FeatureView, start: datetime | None, end: datetime | None) -> None:
    spine = fv.query.spine
    if spine.event_time is None and (start is not None or end is not None):
        raise ValidationError(
            f"start_time/end_time filter on event time, but the spine {spine.name!r} of feature view "
            f"{fv.name!r} has none; omit them to score every row"
        )


def _count(project: Project, fv: FeatureView, start: datetime | None, end: datetime | None) -> int:
    """The number of spine rows in ``[start, end)`` (the total a progress callback is given)."""
    from fti.storage.offline.scan import count_rows, table_source

    spine = fv.query.spine
    source = table_source(project.backends.offline, spine.table_name)
    return 0 if source is None else count_rows(source, spine.event_time, start, end)


def range_is_empty(
    project: Project, group: FeatureGroup, start: datetime | None, end: datetime | None
) -> bool:
    """True when ``group`` stores no row with event time in ``[start, end)``, so no scored row can
    replace a stored one (they all have event times in that range) and appending is exact."""
    from fti.storage.offline.scan import count_rows, table_source

    if group.event_time is None:
        return group.latest_commit_version() is None
    source = table_source(project.backends.offline, group.table_name)
    return source is None or count_rows(source, group.event_time, start, end) == 0


def output_columns(outputs: dict[str, np.ndarray], classes: list[Any] | None) -> list[str]:
    """Column names: ``prediction`` (or ``prediction_<i>``) and ``proba_<class>``."""
    pred = outputs["predict"]
    names = ["prediction"] if pred.ndim == 1 else [f"prediction_{i}" for i in range(pred.shape[1])]
    proba = outputs.get("predict_proba")
    if proba is not None:
        labels = classes if classes is not None and len(classes) == proba.shape[1] else range(proba.shape[1])
        cols = [f"proba_{_slug(c)}" for c in labels]
        if len(set(cols)) != len(cols):
            cols = [f"proba_{i}" for i in range(proba.shape[1])]
        names += cols
    return names


def _slug(value: Any) -> str:
    return re.sub(r"[^a-z0-9_]", "_", str(value).lower()) or "_"


def constant_columns(version: Any, scored_at: datetime, rows: int) -> list[pa.Array]:
    """``model_name``, ``model_version`` and ``scored_at`` for ``rows`` rows, built once per job
    by Arrow (every predictions table takes a zero-copy slice)."""
    import pyarrow as pa

    return [
        pa.repeat(pa.scalar(version.name, pa.string()), rows),
        pa.repeat(pa.scalar(version.version, pa.int64()), rows),
        pa.repeat(pa.scalar(scored_at, pa.timestamp("us", tz="UTC")), rows),
    ]


def predictions(
    chunk: pa.Table,
    keys: list[str],
    outputs: dict[str, np.ndarray],
    names: list[str],
    constants: list[pa.Array],
) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    pred = outputs["predict"]
    values = [pred] if pred.ndim == 1 else list(np.ascontiguousarray(pred.T))
    proba = outputs.get("predict_proba")
    if proba is not None:  # one transposing copy, then each class's column is contiguous
        values += list(np.ascontiguousarray(np.asarray(proba, dtype=np.float64).T))
    n = chunk.num_rows
    columns = [chunk.column(k) for k in keys]
    columns += [pa.array(v) if v.dtype != object else pa.array(v.tolist()) for v in values]
    columns += [constant.slice(0, n) for constant in constants]
    return pa.table(columns, names=[*keys, *names, "model_name", "model_version", "scored_at"])
