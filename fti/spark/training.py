"""Training datasets and batch data of a feature view, computed in Spark (``engine="spark"``).

The same steps as :mod:`fti.features.training_data` and :mod:`fti.features.batch_data`, each
done by the executors: the groups' Delta snapshots are read by their file lists (:mod:`.io`),
joined point-in-time correctly (:mod:`.pit`), numbered in (event time, key) order and split as
the embedded engine numbers and splits them (:func:`~fti.features.training_data.split_labels` on
the same row positions and times), fitted (:mod:`.transform`), written as Parquet and committed
by delta-rs, and recorded through :func:`~fti.features.training_data.store`: a training dataset
made by Spark is the same catalog object as one made by DuckDB, readable by either engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.features import training_data
from fti.features.training_data import ROW_COLUMN, SPLIT_COLUMN
from fti.spark import io
from fti.spark.session import spark_job

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from fti.features._project import FeatureProject
    from fti.features.feature_view import FeatureView
    from fti.features.query import Query
    from fti.features.records import TrainingDataset
    from fti.features.transformations import Transformer

_NAMES = ("train", "validation", "test")  # split codes 0, 1, 2


def sources(
    project: FeatureProject, query: Query, spark: SparkSession
) -> tuple[list[DataFrame], dict[str, int | None]]:
    """The latest Delta snapshot of every group of ``query`` as a DataFrame (an empty one for a
    group without data), and the versions read (as :func:`fti.features.training_data.snapshot`)."""
    from fti.spark.types import struct_of

    frames: list[DataFrame] = []
    versions: dict[str, int | None] = {}
    for part in query.parts:
        group = part.group
        found = io.snapshot(io.table(project, group.table_name))
        versions[group.table_name] = None if found is None else found.version
        frames.append(
            spark.createDataFrame([], struct_of(group.features or []))
            if found is None
            else io.read(spark, found)
        )
    return frames, versions


def create(
    fv: FeatureView,
    *,
    start_time: datetime | None,
    end_time: datetime | None,
    description: str,
    split: dict[str, Any],
) -> tuple[TrainingDataset, DataFrame]:
    """Join, number, split, fit and materialize a new training-dataset version of ``fv`` in Spark.

    Returns the record and the stored rows (untransformed, with the split and row columns) as a
    DataFrame in row order. A failure anywhere records nothing and leaves no table behind.
    """
    project = fv.project
    spark = project.spark()  # first: a BackendError saying what to install, before any pyspark import
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    query = fv.query
    with spark_job(spark, f"training data of feature view {fv.name!r}", cleanup="nothing was recorded"):
        frames, versions = sources(project, query, spark)
        joined = with_on_demand(fv, pit_join(query, frames, start_time, end_time))
        joined = joined.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            stored, counts = _number_and_split(fv, joined, split, start_time, end_time)
            stats = _fit(fv, stored.where(F.col(SPLIT_COLUMN) == "train"))
            schema = arrow_schema(stored)

            def write(table_name: str) -> int:
                location = io.table(project, table_name)
                files = io.write(stored, location, schema)
                return io.commit(location, schema, files, read_version=None, operation="training dataset")

            record = training_data.store(
                fv,
                start_time=start_time,
                end_time=end_time,
                description=description,
                split=split,
                input_versions=versions,
                stats=stats,
                counts=counts,
                write=write,
            )
        finally:
            joined.unpersist()
    return record, read(project, record)


def with_on_demand(fv: FeatureView, joined: DataFrame) -> DataFrame:
    """``joined`` with the view's on-demand outputs appended, computed on the executors by the same
    functions and code as the embedded engine (:meth:`OnDemandPlan.apply_table` over Arrow batches).
    Executors import the functions by their recorded path, so it must be importable there."""
    import copy

    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    from fti.types import arrow_type

    plan = fv.on_demand_plan
    if not plan.steps:
        return joined
    plan.functions()  # imported and checked here first: a changed function fails before the job
    shipped = copy.copy(plan)
    shipped._functions = None  # imported (and checked) again on each executor
    schema = arrow_schema(joined)
    for name, dtype in plan.step_outputs():
        schema = schema.append(pa.field(name, arrow_type(dtype)))

    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield from shipped.apply_table(pa.Table.from_batches([batch])).cast(schema).to_batches()

    return joined.mapInArrow(compute, from_arrow_schema(schema))


def pit_join(
    query: Query, frames: Sequence[DataFrame], start_time: datetime | None, end_time: datetime | None
) -> DataFrame:
    from fti.spark import pit

    return pit.join(query, frames, start_time=start_time, end_time=end_time, order=True)


def _fit(fv: FeatureView, train: DataFrame) -> dict[str, dict[str, Any]]:
    from fti.spark.transform import fit

    return fit(fv.transformation_specs, train)


def _number_and_split(
    fv: FeatureView, joined: DataFrame, split: dict[str, Any], start: datetime | None, end: datetime | None
) -> tuple[DataFrame, dict[str, int]]:
    """``joined`` (sorted, persisted) with the row number and split name of every row, and the
    row counts per split; raises before anything is written when a split would be empty.

    Row numbers are positions in the sorted order: each partition's rows are counted first, then
    every partition numbers its rows from the count of the partitions before it.
    """
    import numpy as np
    import pyarrow as pa
    from pyspark.sql import functions as F

    kind = split["kind"]
    event_time = fv.query.spine.event_time
    aggregates = [F.count(F.lit(1)).alias("rows")]
    if kind == "time":
        ts = F.col(f"`{event_time}`")
        test, validation = split.get("test_start"), split.get("validation_start")
        if test is not None:
            aggregates.append(F.sum(F.when(ts >= F.lit(test), 1).otherwise(0)).alias("test"))
        if validation is not None:
            early = ts >= F.lit(validation)
            if test is not None:
                early = early & (ts < F.lit(test))
            aggregates.append(F.sum(F.when(early, 1).otherwise(0)).alias("validation"))
    partitions = joined.groupBy(F.spark_partition_id().alias("p")).agg(*aggregates).collect()
    total = sum(int(row["rows"]) for row in partitions)
    if total == 0:
        raise training_data.no_rows(fv, start, end)
    offsets: dict[int, int] = {}
    position = 0
    for row in sorted(partitions, key=lambda r: int(r["p"])):
        offsets[int(row["p"])] = position
        position += int(row["rows"])
    codes: Any = None
    if kind == "random":  # the embedded engine's permutation of the same row positions
        labels = training_data.split_labels(total, split)
        codes = np.zeros(total, dtype=np.int8)
        codes[labels == "validation"], codes[labels == "test"] = 1, 2
        counts = {name: int(np.count_nonzero(codes == i)) for i, name in enumerate(_NAMES)}
        codes = joined.sparkSession.sparkContext.broadcast(codes)
    else:  # time splits were counted by the aggregation above
        sums = {name: sum(int(row.asDict().get(name) or 0) for row in partitions) for name in _NAMES[1:]}
        counts = {"train": total - sum(sums.values()), **sums}
    if kind != "none":
        training_data.check_split_counts(split, counts, total)

    def number(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        start = offsets.get(context.partitionId() if context else 0, 0)
        for batch in batches:
            n = batch.num_rows
            if codes is not None:
                names = np.asarray(_NAMES, dtype=object)[codes.value[start : start + n]]
            else:
                names = training_data.split_labels(
                    n, split, batch.column(event_time) if kind == "time" else None
                )
            rows = pa.array(np.arange(start, start + n, dtype=np.int64))
            start += n
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, pa.array(names, pa.string()), rows],
                names=[*batch.schema.names, SPLIT_COLUMN, ROW_COLUMN],
            )

    from pyspark.sql import types as T

    struct = T.StructType(
        [
            *joined.schema.fields,
            T.StructField(SPLIT_COLUMN, T.StringType()),
            T.StructField(ROW_COLUMN, T.LongType()),
        ]
    )
    result = {"total": total}
    result.update({name: counts[name] for name in _NAMES if name == "train" or counts[name]})
    return joined.mapInArrow(number, struct), result


def arrow_schema(df: DataFrame) -> pa.Schema:
    """The Arrow schema of a DataFrame of fti's types (what its Delta table stores)."""
    import pyarrow as pa

    from fti.errors import SchemaError
    from fti.spark.types import dtype_of
    from fti.types import arrow_type

    fields = []
    for field in df.schema.fields:
        dtype = dtype_of(field.dataType)
        if dtype is None:
            raise SchemaError(
                f"column {field.name!r} has type {field.dataType.simpleString()}, which fti cannot store"
            )
        fields.append(pa.field(field.name, arrow_type(dtype)))
    return pa.schema(fields)


def read(project: FeatureProject, record: TrainingDataset) -> DataFrame:
    """The stored rows of a training-dataset version (whichever engine made it), in row order."""
    spark = project.spark()
    from pyspark.sql import functions as F

    found = io.snapshot(io.table(project, record.table_name), record.table_version)
    assert found is not None
    return io.read(spark, found).orderBy(F.col(ROW_COLUMN))


def get_training_data(
    fv: FeatureView, record: TrainingDataset, names: Sequence[str | None], transformer: Transformer | None
) -> tuple[DataFrame | None, ...]:
    """``X`` DataFrames (one per split name in ``names``; None: all rows), then the ``y`` ones
    (None without labels), each in row order, so X and y line up when collected; X transformed by
    ``transformer`` (None: as stored)."""
    stored = read(fv.project, record)
    from pyspark.sql import functions as F

    labels = fv.labels
    xs: list[DataFrame | None] = []
    ys: list[DataFrame | None] = []
    for name in names:
        part = stored if name is None else stored.where(F.col(SPLIT_COLUMN) == name)
        rows, outputs = _transformed(fv, part, transformer)
        xs.append(rows.select(*[F.col(f"`{c}`") for c in outputs]))
        ys.append(rows.select(*[F.col(f"`{c}`") for c in labels]) if labels else None)
    return (*xs, *ys)


def with_labels(fv: FeatureView, rows: DataFrame, transformer: Transformer) -> DataFrame:
    """Stored training rows as model inputs (transformed), then labels, in row order."""
    from pyspark.sql import functions as F

    transformed, outputs = _transformed(fv, rows, transformer)
    return transformed.select(*[F.col(f"`{c}`") for c in [*outputs, *fv.labels]])


def _transformed(
    fv: FeatureView, rows: DataFrame, transformer: Transformer | None
) -> tuple[DataFrame, list[str]]:
    """``rows`` (stored training rows) in row order with the model inputs transformed (or as
    stored), the labels and the row number; and the names of the model inputs."""
    from pyspark.sql import functions as F

    from fti.spark.transform import apply

    ordered = rows.orderBy(F.col(ROW_COLUMN))
    if transformer is None:
        return ordered, fv.feature_names(transformed=False)
    return apply(ordered, transformer, after=[*fv.labels, ROW_COLUMN]), list(transformer.output_names)


def get_batch_data(
    fv: FeatureView,
    start_time: datetime | None,
    end_time: datetime | None,
    *,
    with_keys: bool,
    transformer: Transformer,
    order: bool,
) -> DataFrame:
    """The view's batch data (the latest data of every group, joined, transformed) as a DataFrame."""
    from fti.spark import pit
    from fti.spark.transform import apply

    project = fv.project
    spark = project.spark()
    frames, _ = sources(project, fv.query, spark)
    joined = pit.join(fv.query, frames, start_time=start_time, end_time=end_time, order=order)
    return apply(with_on_demand(fv, joined), transformer, before=fv.query.key_columns() if with_keys else ())
