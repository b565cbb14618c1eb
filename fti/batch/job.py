"""A batch inference job: feature view batch data -> fastest verified scorer -> predictions group.

Memory stays bounded whatever the row count: the feature view's point-in-time join runs once over
the whole range and is read as a stream of ``chunk_rows``-row batches
(:meth:`~fti.features.feature_view.FeatureView.iter_batch_data`, transformations exactly as in
training and online serving); each batch is scored and appended to a temporary Parquet file on
disk. Reading the next batch, scoring the current one and writing the previous one overlap in three
threads (one batch in flight each).

Predictions are committed once, at the end, to the output feature group (primary key and event
time of the input rows, ``prediction``, one ``proba_<class>`` column per class for classifiers,
``model_name``, ``model_version``, ``scored_at``): a failure while scoring writes nothing. Runs of
more than ``COMMIT_ROWS`` predictions commit in slices of that size to keep the final insert's
memory bounded too; that is safe because the group upserts by (primary key, event time), so
re-running a job after a crash converges to the same rows. When the group holds no row in the
scored time range (a new group, or the next day of a daily job) nothing can be replaced, so the
commit appends instead of merging; statistics of the predictions are computed on demand.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti._names import check_name
from fti.errors import ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup
    from fti.features.feature_view import FeatureView
    from fti.project import Project
    from fti.registry.scoring import Scorer

DEFAULT_CHUNK_ROWS = 262_144
COMMIT_ROWS = 4_000_000
SAMPLE_ROWS = 2_000
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
    """The scorer kind that ran (``native``, ``onnx``, ``compiled``)."""
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
    model: str,
    *,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    output: str,
    output_version: int = 1,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    prefer: str = "fastest",
    progress: Progress | None = None,
) -> BatchScoreResult:
    """Score a registered model over its feature view's rows in ``[start_time, end_time)``.

    Args:
        project: The project holding the model and its feature view.
        model: ``"name@alias"`` (e.g. ``"fraud@production"``), ``"name"`` (latest version) or
            ``"name:3"`` (version 3).
        start_time: Inclusive lower bound on the spine's event time (tz-aware; None = no bound).
        end_time: Exclusive upper bound (tz-aware; None = no bound).
        output: The predictions feature group, created on first use with the view's primary key
            and event time.
        output_version: Version of the predictions group.
        chunk_rows: About how many rows are read and scored at once (memory bound).
        prefer: Scorer choice, see :func:`fti.registry.scoring.get_scorer`.
        progress: Optional callback ``(rows_done, rows_total)``.

    Returns:
        The predictions group, the row count, the model version and scorer used.

    Raises:
        ValidationError: bad times, names or chunk size; the model has no feature view.
        NotFoundError: unknown model, alias or version.
    """
    started = time.perf_counter()
    check_name(output, "output feature group")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValidationError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    _check_times(start_time, end_time)
    if not isinstance(model, str) or not model:
        raise ValidationError(f"model must be 'name@alias', 'name' or 'name:version', got {model!r}")

    version = _resolve(project, model)
    fv = version.feature_view()
    if fv is None:
        raise ValidationError(
            f"model {version.name!r} version {version.version} was registered without a feature "
            "view, so batch scoring cannot read its inputs; register it with its feature view "
            "(e.g. run.log_model(..., feature_view=fv))"
        )
    td_version = version.training_dataset_version
    columns = fv.feature_names(transformed=True, training_dataset_version=td_version)
    keys = [*fv.primary_key, *([fv.event_time] if fv.event_time else [])]
    scored_at = datetime.now(UTC)
    total = _count(project, fv, start_time, end_time)
    batches = (
        fv.iter_batch_data(
            start_time,
            end_time,
            batch_rows=chunk_rows,
            with_keys=True,
            training_dataset_version=td_version,
        )
        if total
        else iter(())
    )

    workdir = Path(tempfile.mkdtemp(prefix="fti-batch-", dir=_scratch(project)))
    reader = ThreadPoolExecutor(1, thread_name_prefix="fti-batch-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="fti-batch-write")
    try:

        def load() -> tuple[pa.Table, np.ndarray] | None:
            from fti.registry.scoring import to_matrix

            data = next(batches, None)
            return None if data is None else (data.select(keys), to_matrix(data, columns))

        # the first batch is read here: its first rows verify and time the scorer candidates
        current = load()
        if current is None or not len(current[1]):
            return BatchScoreResult(
                None, 0, version.name, version.version, "none", [], scored_at, time.perf_counter() - started
            )
        native, scorer = _scorer(project, version, current[1], prefer)
        classes = getattr(native, "classes_", None)
        path = workdir / "predictions.parquet"
        sink: Any = None
        written: Future[None] | None = None
        done = 0
        # three stages overlap: the reader prefetches batch i+1 (DuckDB and Arrow release the
        # GIL) while batch i is scored and the writer appends batch i-1 to the staging file;
        # at most one batch is in flight per stage, so memory stays bounded
        while current is not None:
            pending = reader.submit(load)
            keys_table, matrix = current
            for offset in range(0, len(matrix), chunk_rows):
                outputs = scorer.predict(matrix[offset : offset + chunk_rows])
                names = _output_columns(outputs, None if classes is None else list(classes))
                table = _predictions(
                    keys_table.slice(offset, chunk_rows), keys, outputs, names, version, scored_at
                )
                if sink is None:
                    import pyarrow.parquet as pq

                    _check_output(project, output, output_version, keys, fv, table.schema)
                    sink = pq.ParquetWriter(path, table.schema)
                if written is not None:
                    written.result()
                written = writer.submit(sink.write_table, table)
                done += table.num_rows
            if progress is not None:
                progress(done, max(total, done))
            current = pending.result()
        if written is not None:
            written.result()
        sink.close()
        group = project.feature_store.get_or_create_feature_group(
            output,
            output_version,
            primary_key=fv.primary_key,
            event_time=fv.event_time,
            description=f"batch predictions of model {version.name!r} over feature view {fv.name!r}",
        )
        commits = _commit(group, path, append=_range_is_empty(project, group, start_time, end_time))
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # stops the feature view's query when scoring failed midway
        shutil.rmtree(workdir, ignore_errors=True)
    return BatchScoreResult(
        group,
        done,
        version.name,
        version.version,
        scorer.kind,
        commits,
        scored_at,
        time.perf_counter() - started,
    )


def _check_output(
    project: Project, output: str, version: int, keys: list[str], fv: FeatureView, schema: pa.Schema
) -> None:
    """Fail before scoring everything when an existing output group cannot take these rows."""
    from fti.errors import AlreadyExistsError, NotFoundError, SchemaError
    from fti.types import dtype_of

    try:
        group = project.feature_store.get_feature_group(output, version)
    except NotFoundError:
        return
    if group.primary_key != list(fv.primary_key) or group.event_time != fv.event_time:
        raise AlreadyExistsError(
            f"feature group {output!r} version {version} has primary key {group.primary_key} and event "
            f"time {group.event_time!r}, but predictions of this model are keyed by {keys}; choose "
            "another output name or version"
        )
    if group.features is not None:
        stored = {f.name: f.dtype for f in group.features}
        given = {field.name: dtype_of(field.type) for field in schema}
        if stored != given:
            raise SchemaError(
                f"feature group {output!r} version {version} holds columns {stored}, but this model's "
                f"predictions have {given}; write them to another output name or version"
            )


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


def _resolve(project: Project, model: str) -> Any:
    registry = project.model_registry
    name, sep, version = model.partition(":")
    if sep:
        if not version.isdigit():
            raise ValidationError(f"model version in {model!r} must be an integer, e.g. 'fraud:3'")
        return registry.get_model(name, version=int(version))
    return registry.resolve(model)


def _scratch(project: Project) -> str | None:
    """Temporary files go under the fti home when it is local (same disk as the data)."""
    home = Path(project.settings.home)
    try:
        home.mkdir(parents=True, exist_ok=True)
        scratch = home / "tmp"
        scratch.mkdir(exist_ok=True)
        return str(scratch)
    except OSError:
        return None


def _scorer(project: Project, version: Any, rows: np.ndarray, prefer: str) -> tuple[Any, Scorer]:
    """The native model and the fastest scorer, verified on the first ``SAMPLE_ROWS`` of ``rows``
    and timed on up to ``TIMING_ROWS`` of them (conversions and the winner cached on disk)."""
    from fti.registry.scoring import TIMING_ROWS, cache_key, get_scorer

    native = version.load()
    scorer = get_scorer(
        native,
        sample=rows[:SAMPLE_ROWS],
        timing_sample=rows[:TIMING_ROWS],
        prefer=prefer,
        cache_dir=Path(project.settings.home) / "cache" / "scorers",
        cache_key=cache_key(version),
        predict_fn=version.flavor_impl.predict,
    )
    return native, scorer


def _count(project: Project, fv: FeatureView, start: datetime | None, end: datetime | None) -> int:
    """The number of spine rows in ``[start, end)`` (for progress and to skip an empty run)."""
    spine = fv.query.spine
    if spine.event_time is None and (start is not None or end is not None):
        raise ValidationError(
            f"start_time/end_time filter on event time, but the spine {spine.name!r} of feature view "
            f"{fv.name!r} has none; omit them to score every row"
        )
    from fti.errors import NotFoundError

    try:
        dataset = project.backends.offline.dataset(spine.table_name)
    except NotFoundError:  # nothing inserted yet
        return 0
    return int(dataset.count_rows(filter=_time_filter(spine.event_time, start, end)))


def _time_filter(column: str | None, start: datetime | None, end: datetime | None) -> Any:
    """A pyarrow dataset filter ``start <= column < end`` (None when unbounded)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    condition = None
    if column is not None:
        ts_type = pa.timestamp("us", tz="UTC")
        if start is not None:
            condition = ds.field(column) >= pa.scalar(start, ts_type)
        if end is not None:
            upper = ds.field(column) < pa.scalar(end, ts_type)
            condition = upper if condition is None else condition & upper
    return condition


def _range_is_empty(
    project: Project, group: FeatureGroup, start: datetime | None, end: datetime | None
) -> bool:
    """True when ``group`` stores no row with event time in ``[start, end)``, so no scored row can
    replace a stored one (they all have event times in that range) and appending is exact."""
    from fti.errors import NotFoundError

    if group.latest_commit_version() is None:
        return True
    if group.event_time is None:
        return False
    try:
        dataset = project.backends.offline.dataset(group.table_name)
    except NotFoundError:
        return True
    return int(dataset.count_rows(filter=_time_filter(group.event_time, start, end))) == 0


def _output_columns(outputs: dict[str, np.ndarray], classes: list[Any] | None) -> list[str]:
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


def _predictions(
    chunk: pa.Table,
    keys: list[str],
    outputs: dict[str, np.ndarray],
    names: list[str],
    version: Any,
    scored_at: datetime,
) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    pred = outputs["predict"]
    values = [pred] if pred.ndim == 1 else list(pred.T)
    proba = outputs.get("predict_proba")
    if proba is not None:
        values += list(np.asarray(proba, dtype=np.float64).T)
    n = chunk.num_rows
    columns = [chunk.column(k) for k in keys]
    columns += [pa.array(v) if v.dtype != object else pa.array(v.tolist()) for v in values]
    columns += [  # constants filled by Arrow, not by Python objects
        pa.repeat(pa.scalar(version.name, pa.string()), n),
        pa.repeat(pa.scalar(version.version, pa.int64()), n),
        pa.repeat(pa.scalar(scored_at, pa.timestamp("us", tz="UTC")), n),
    ]
    return pa.table(columns, names=[*keys, *names, "model_name", "model_version", "scored_at"])


def _commit(group: FeatureGroup, path: Path, *, append: bool) -> list[int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    mode = "append" if append else "upsert"
    source = pq.ParquetFile(path)
    if source.metadata.num_rows <= COMMIT_ROWS:
        return [group.insert(source.read(), validation="none", write_mode=mode, statistics=False).version]
    commits = []
    for batch in source.iter_batches(batch_size=COMMIT_ROWS):
        table = pa.Table.from_batches([batch])
        commits.append(group.insert(table, validation="none", write_mode=mode, statistics=False).version)
    return commits
