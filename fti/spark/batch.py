"""Batch scoring on Spark executors: ``fti.batch.score(..., engine="spark")``.

The embedded job (:mod:`fti.batch.job`) with the work spread over a cluster:

1. the model's feature view gives its batch data as a Spark DataFrame: the point-in-time join in
   Spark and the fitted transformations of the model's training dataset
   (:func:`fti.spark.training.get_batch_data`);
2. the driver picks the scorer as the embedded job does (the cached verified winner, else the
   candidates verified and timed on the job's first rows, :class:`~fti.inference.ScorerCache`);
3. every executor loads the model version from the artifact store, each file checked against its
   recorded SHA-256 (:class:`ArtifactModelVersion`), builds that same scorer, re-verified on the
   driver's rows (or rebuilt from the scorer cache when the executor shares the driver's home),
   and scores its partitions' Arrow batches (``mapInArrow``), ``chunk_rows`` rows per call;
4. the predictions are committed to the output feature group as one Delta commit
   (``fg.insert(spark_df)``, :mod:`fti.spark.ingest`); a failure anywhere commits nothing and a
   group this run created is removed again.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.spark.session import spark_job

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from fti.batch.job import BatchScoreResult
    from fti.features.feature_view import FeatureView
    from fti.inference.base import Scorer
    from fti.project import Project
    from fti.registry.model_version import ModelVersion


@dataclass(frozen=True)
class Job:
    """What to score: the model version, its feature view, the range and where the predictions go."""

    version: ModelVersion
    feature_view: FeatureView
    start_time: datetime | None
    end_time: datetime | None
    output: str
    output_version: int
    chunk_rows: int
    prefer: str


@dataclass(frozen=True)
class ArtifactModelVersion:
    """A registered model version as an executor sees it: its catalog record, and its files read
    from the artifact store (each checked against its recorded digest); no catalog connection."""

    record: ModelVersion
    artifacts_url: str

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def version(self) -> int:
        return self.record.version

    @property
    def flavor(self) -> str:
        return self.record.flavor

    @property
    def artifacts(self) -> dict[str, str]:
        return self.record.artifacts

    @property
    def signature(self) -> Any:
        return self.record.signature

    @property
    def training_dataset_version(self) -> int | None:
        return self.record.training_dataset_version

    def _store(self) -> Any:
        from fti.plugins import artifact_store_from_url

        return artifact_store_from_url(self.artifacts_url)

    def verify(self) -> None:
        """Raises ``IntegrityError`` when a stored file does not match its recorded digest."""
        from fti.registry._artifacts import verify  # the registry's digest-checked file access

        verify(self._store(), self.record.artifact_prefix, self.record.artifacts)

    def load(self) -> Any:
        """The native model, from files whose digests were verified first."""
        from fti.registry._artifacts import fetch
        from fti.registry.flavors.base import get_flavor

        with tempfile.TemporaryDirectory(prefix="fti-model-") as tmp:
            fetch(self._store(), self.record.artifact_prefix, self.record.artifacts, Path(tmp))
            return get_flavor(self.record.flavor).load(Path(tmp), self.record.flavor_options)

    def feature_view(self) -> None:
        """No catalog on the executors: conversions are verified on the rows the driver sends."""
        return None

    def input_example(self) -> Any:
        return self.record.input_example()


@dataclass(frozen=True)
class ScorerPlan:
    """The driver's choice, sent to every executor: the model, the winning scorer and its checks."""

    model: ArtifactModelVersion
    prefer: str
    winner: str | None
    """The builder that won on the driver (``native`` or a converter), remembered per executor."""
    sample: np.ndarray
    """The rows the driver verified the candidates on (the job's first rows)."""
    cache_dir: str
    """The driver's scorer cache; an executor that cannot reach it uses a local one."""


_scorers: dict[str, Scorer] = {}
_scorers_lock = threading.Lock()


def executor_scorer(plan: ScorerPlan) -> Scorer:
    """The plan's scorer in this Python worker, built once per worker process and model version."""
    from fti.inference.cache import ScorerCache
    from fti.inference.entry import purpose, version_key
    from fti.inference.parallel import single_threaded

    key = version_key(plan.model)
    with _scorers_lock:
        scorer = _scorers.get(key)
        if scorer is not None:
            return scorer
        directory = Path(plan.cache_dir)
        if not (directory.is_dir() and os.access(directory, os.W_OK)):
            directory = Path(tempfile.gettempdir()) / "fti-spark-scorers"
        cache = ScorerCache(directory)
        chosen = None if plan.prefer == "native" else cache.load(plan.model, prefer=plan.prefer)
        if chosen is None:
            native = plan.model.load()
            if plan.winner is not None:  # the driver measured the candidates: re-verify its winner only
                cache.entry(plan.model).remember_choice(plan.winner, purpose(plan.prefer, "batch"))
            chosen = cache.build(plan.model, native, prefer=plan.prefer, rows=plan.sample)
        # Spark runs one task per core: the scorer uses one thread.
        _scorers[key] = scorer = single_threaded(chosen)
        return scorer


def score(
    project: Project,
    job: Job,
    scored_at: datetime,
    started: float,
    progress: Callable[[int, int], None] | None,
) -> BatchScoreResult:
    """Run ``job`` on ``project.spark()`` (see the module docstring)."""
    import time

    spark = project.spark()  # first: a BackendError saying what to install, before any pyspark import
    from pyspark import StorageLevel

    from fti.batch.job import BatchScoreResult, output_group, range_is_empty
    from fti.spark import training

    version, fv = job.version, job.feature_view
    keys = fv.query.key_columns()
    td_version = version.training_dataset_version
    columns = fv.feature_names(transformed=True, training_dataset_version=td_version)
    transformer = fv.transformer(td_version)
    what = f"batch scoring of {version.name}:{version.version}"
    with spark_job(spark, what, cleanup="nothing was committed"):
        batch = training.get_batch_data(
            fv, job.start_time, job.end_time, with_keys=True, transformer=transformer, order=False
        )
        plan, scorer, classes, sample = _plan(project, job, batch, columns)
        if plan is None:
            seconds = time.perf_counter() - started
            return BatchScoreResult(None, 0, version.name, version.version, "none", [], scored_at, seconds)
        first = _score_chunk(scorer, sample, keys, columns, classes, version, scored_at)
        group, created = output_group(project, job.output, job.output_version, keys, fv, version, first)
        mode = "append" if range_is_empty(project, group, job.start_time, job.end_time) else "upsert"
        predictions = _predictions(
            batch, plan, keys, columns, classes, first.schema, scored_at, job.chunk_rows
        )
        predictions = predictions.persist(
            StorageLevel.MEMORY_AND_DISK
        )  # scored once for the checks and the write
        try:
            result = group.insert(predictions, validation="none", write_mode=mode, statistics=False)
        except BaseException:
            if created:
                group.delete()
            raise
        finally:
            predictions.unpersist()
    if progress is not None:
        progress(result.rows, result.rows)
    return BatchScoreResult(
        group,
        result.rows,
        version.name,
        version.version,
        scorer.kind,
        [result.version],
        scored_at,
        time.perf_counter() - started,
    )


def _plan(
    project: Project, job: Job, batch: Any, columns: list[str]
) -> tuple[ScorerPlan | None, Any, list[Any] | None, pa.Table]:
    """The driver's scorer and class labels (as the embedded job picks them) and the plan for the
    executors; no plan when the range holds no rows. The job's first rows verify and time the
    candidates."""
    from fti.inference.base import CLASSES_NOT_RECORDED
    from fti.inference.cache import ScorerCache
    from fti.inference.entry import purpose
    from fti.inference.matrix import to_matrix
    from fti.inference.selection import TIMING_ROWS
    from fti.inference.verification import VERIFY_ROWS

    version = job.version
    first = batch.limit(max(VERIFY_ROWS, min(TIMING_ROWS, job.chunk_rows))).toArrow()
    if first.num_rows == 0:
        return None, None, None, first
    rows = to_matrix(first, columns)
    cache = ScorerCache.at_home(project.settings.home)
    # a converted winner cached with the model's classes runs without loading the native model
    chosen = None if job.prefer == "native" else cache.load(version, prefer=job.prefer)
    classes = getattr(chosen, "classes", CLASSES_NOT_RECORDED)
    if chosen is None or classes is CLASSES_NOT_RECORDED:
        native = version.load()
        chosen = cache.build(version, native, prefer=job.prefer, rows=rows, timing_sample=rows)
        classes = getattr(native, "classes_", None)
    detached = ArtifactModelVersion(replace(version, registry=None), project.settings.resolved_artifacts_url)
    plan = ScorerPlan(
        detached,
        job.prefer,
        cache.entry(version).choice(purpose(job.prefer, "batch")),
        rows[:VERIFY_ROWS],
        str(cache.directory),
    )
    return plan, chosen, None if classes is None else list(classes), first


def _score_chunk(
    scorer: Scorer,
    table: pa.Table,
    keys: list[str],
    columns: list[str],
    classes: list[Any] | None,
    version: Any,
    scored_at: datetime,
) -> pa.Table:
    """The predictions table of a chunk of batch data (the embedded job's columns)."""
    from fti.batch.job import constant_columns, output_columns, predictions
    from fti.inference.matrix import to_matrix

    outputs = scorer.predict(to_matrix(table, columns))
    names = output_columns(outputs, classes)
    return predictions(
        table.select(keys), keys, outputs, names, constant_columns(version, scored_at, table.num_rows)
    )


def _predictions(
    batch: Any,
    plan: ScorerPlan,
    keys: list[str],
    columns: list[str],
    classes: list[Any] | None,
    schema: pa.Schema,
    scored_at: datetime,
    chunk_rows: int,
) -> Any:
    """The batch data scored on the executors, ``chunk_rows`` rows per predict call."""
    from fti.spark.types import struct_of_arrow

    record = plan.model.record

    def score_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        scorer = executor_scorer(plan)
        pending: list[pa.RecordBatch] = []
        count = 0

        def flush() -> Iterator[pa.RecordBatch]:
            table = pa.Table.from_batches(pending)
            yield from (
                _score_chunk(scorer, table, keys, columns, classes, record, scored_at)
                .cast(schema)
                .to_batches()
            )

        for piece in batches:
            pending.append(piece)
            count += piece.num_rows
            if count >= chunk_rows:
                yield from flush()
                pending, count = [], 0
        if pending:
            yield from flush()

    return batch.mapInArrow(score_partition, struct_of_arrow(schema))
