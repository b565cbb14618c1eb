"""``fg.insert(spark_df)``: a feature pipeline's Spark DataFrame checked, written and committed once.

The guarantees of :meth:`FeatureGroup.insert <fti.features.feature_group.FeatureGroup.insert>`,
with the work on the executors:

1. **checks** — the schema on the driver (:func:`fti.spark.types.conform`); null keys and the
   expectation suite in one Spark aggregation, duplicate (key, event time) pairs in another
   (:mod:`.validation`). A failed check raises before anything is written.
2. **write** — the executors write Parquet files into the table's directory (:func:`.io.write`).
   An upsert (the default) first finds the stored files holding any inserted (key, event time)
   pair and rewrites their other rows next to the new ones (copy-on-write, as Delta's MERGE does).
3. **commit** — delta-rs commits the new files, and removes the rewritten ones, as one Delta
   version; the catalog records it with statistics computed in Spark (:mod:`.statistics`).
4. **online** — the latest row per key goes to the online store (:mod:`.online`).

A failure at any step before the commit (a check, a killed job, a lost executor) commits
nothing and deletes the files written so far. The DataFrame is evaluated once per step (checks,
write, online rows): cache it (``df.cache()``) when computing it is expensive or not deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from fti.errors import ExpectationError, SchemaError, ValidationError
from fti.features import commit
from fti.features.ingestion import VALIDATION_MODES, InsertResult
from fti.features.validation import ValidationReport
from fti.spark import io
from fti.spark.session import spark_job

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from fti.features.feature_group import FeatureGroup
    from fti.types import Feature


def is_spark_dataframe(data: Any) -> bool:
    """True for a ``pyspark.sql.DataFrame`` (classic or Spark Connect), without importing pyspark."""
    kind = type(data)
    return kind.__module__.startswith("pyspark.sql") and kind.__name__ == "DataFrame"


def insert(
    fg: FeatureGroup,
    df: DataFrame,
    validation: str,
    *,
    write_mode: str,
    statistics: bool,
    set_features: Callable[[list[Feature]], None],
) -> InsertResult:
    """Check and commit ``df`` into ``fg`` (see the module docstring); ``set_features`` fixes the
    group's schema on its first insert."""
    if not is_spark_dataframe(df):
        raise ValidationError(
            f"data for feature group {fg.name!r} must be a pandas, polars or Spark DataFrame or a pyarrow "
            f"Table, got {type(df).__module__}.{type(df).__name__}"
        )
    if type(df).__module__.startswith("pyspark.sql.connect"):
        raise ValidationError(
            "Spark Connect DataFrames are not supported: the Spark engine needs a classic SparkSession "
            "(project.spark(), or SparkSession.builder.master(...) in this process)"
        )
    if validation not in VALIDATION_MODES:
        raise ValidationError(f"validation must be one of {VALIDATION_MODES}, got {validation!r}")
    what = f"data for feature group {fg.name!r}"
    missing_keys = [k for k in fg.key_columns if k not in df.columns]
    if missing_keys:
        raise SchemaError(
            f"key column(s) {missing_keys} missing from the {what} (columns given: {df.columns})"
        )
    data, features = _conformed(fg, df, what)
    dtypes = {f.name: f.dtype for f in features}
    from fti.spark.validation import expectations

    suite = fg.expectation_suite if validation != "none" else None
    checks = expectations(suite, dtypes) if suite is not None else []  # refused before any job
    location = io.table(fg.project, fg.table_name)
    schema = _arrow_schema(features)
    spark = df.sparkSession
    with ExitStack() as write:
        with spark_job(spark, f"insert into feature group {fg.name!r}", cleanup="nothing was committed"):
            rows, status, report = _check(fg, data, checks, validation)
            write.enter_context(commit.writing(fg))  # entered from before the commit to its record
            before = io.snapshot(location)
            written, removed = _write(fg, data, location, schema, before, merge=write_mode == "upsert")
            version = io.commit(
                location,
                schema,
                written,
                removed=removed,
                read_version=None if before is None else before.version,
                operation="upsert" if removed else "append",
            )
            if fg.features is None:  # the first successful commit fixes the schema, not an attempt
                set_features(features)
        with spark_job(spark, f"statistics and online rows of feature group {fg.name!r}"):
            stats = None
            if statistics:
                from fti.spark.statistics import compute

                after = io.snapshot(location, version)
                assert after is not None
                stats = compute(io.read(spark, after), schema)
            commit.record(fg, version, "insert", rows, status, report, stats)
            write.close()
            online_rows = _materialize(fg, data, schema, before, version)
    return InsertResult(version=version, rows=rows, validation=status, report=report, online_rows=online_rows)


def _conformed(fg: FeatureGroup, df: DataFrame, what: str) -> tuple[DataFrame, list[Feature]]:
    from fti.spark.types import conform

    data, features = conform(df, fg.features, what)
    dtypes = {f.name: f.dtype for f in features}
    if fg.event_time and dtypes.get(fg.event_time) != "timestamp":
        raise SchemaError(
            f"event time column {fg.event_time!r} must hold timestamps (Spark TimestampType), "
            f"got {dtypes.get(fg.event_time)}"
        )
    return data, features


def _arrow_schema(features: list[Feature]) -> pa.Schema:
    import pyarrow as pa

    from fti.types import arrow_type

    return pa.schema([pa.field(f.name, arrow_type(f.dtype)) for f in features])


def _check(
    fg: FeatureGroup, data: DataFrame, checks: list[Any], validation: str
) -> tuple[int, str, dict[str, Any] | None]:
    """Run every check (raising before any write) and return the row count and the validation
    outcome, as :func:`fti.features.ingestion.run_validation` reports it."""
    from fti.spark import validation as checking

    found = checking.run(data, fg.key_columns, checks)
    if found.rows == 0:
        raise ValidationError(f"cannot insert an empty dataframe into feature group {fg.name!r}")
    for name, nulls in found.null_keys.items():
        if nulls:
            kind = "primary key" if name in fg.primary_key else "event time"
            raise ValidationError(
                f"{kind} column {name!r} has {nulls} null value(s); every row needs a value"
            )
    if found.duplicates:
        keys = fg.key_columns
        groups = found.duplicates
        shown = [dict(zip(keys, e, strict=True)) for e in checking.duplicate_examples(data, keys)]
        what = "(primary key, event time)" if fg.event_time else "primary key"
        raise ValidationError(
            f"{groups} duplicate {what} value(s) in one insert into {fg.name!r}, e.g. {shown}; "
            f"keep one row per {what}"
        )
    if fg.expectation_suite is None or validation == "none":
        return found.rows, "none", None
    report = ValidationReport(not found.failures, found.failures)
    if report.success:
        return found.rows, "passed", report.to_dict()
    if validation == "strict":
        raise ExpectationError(
            f"insert into {fg.name!r} rejected by its expectation suite (nothing was written): "
            f"{report.summary()}",
            details=report.to_dict(),
        )
    return found.rows, "warned", report.to_dict()


def _write(
    fg: FeatureGroup,
    data: DataFrame,
    location: io.Table,
    schema: pa.Schema,
    before: io.Snapshot | None,
    *,
    merge: bool,
) -> tuple[list[io.Written], list[str]]:
    """Write the new rows (and, for an upsert, the other rows of every stored file holding one of
    their keys); return the files written and the Delta paths they replace."""
    from pyspark.sql import functions as F

    keys = fg.key_columns
    removed: list[str] = []
    rows = data
    if merge and before is not None and before.files:
        incoming = data.select(*[F.col(f"`{k}`") for k in keys]).distinct()
        stored = io.read(data.sparkSession, before, keys, with_file=True)
        touched = stored.join(incoming, keys, "left_semi").select(io.FILE_COLUMN).distinct().collect()
        removed = sorted(r[0] for r in touched)
        if removed:
            sizes = dict(zip(before.files, before.sizes, strict=True))
            rewritten = io.Snapshot(
                location, before.version, before.schema, tuple(removed), tuple(sizes[p] for p in removed)
            )
            kept = io.read(data.sparkSession, rewritten).join(incoming, keys, "left_anti")
            rows = data.unionByName(kept.select(*data.columns))
    return io.write(rows.select(*[F.col(f"`{n}`") for n in schema.names]), location, schema), removed


def _materialize(
    fg: FeatureGroup, data: DataFrame, schema: pa.Schema, before: io.Snapshot | None, version: int
) -> int:
    """The online upsert of a commit: the inserted rows' latest per key when the online store is
    at the previous version, else a catch-up from the whole table at ``version``."""
    if not fg.online_enabled:
        return 0
    from fti.spark import online

    previous = None if before is None else before.version
    source = data
    if fg.project.backends.online.applied_version(fg.table_name) != previous:
        snapshot = io.snapshot(io.table(fg.project, fg.table_name), version)
        assert snapshot is not None
        source = io.read(data.sparkSession, snapshot)
    latest = online.latest_per_key(source, fg.primary_key, fg.event_time)
    return online.write(fg, latest, schema, version)
