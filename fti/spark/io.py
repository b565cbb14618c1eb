"""Delta tables of the offline store read and written by Spark, committed by delta-rs.

No Delta-Spark jar is involved (it is fetched from a Maven repository at run time, which
air-gapped installs cannot do):

* **read** (:func:`snapshot`, :func:`read`): delta-rs lists the data files of a table version
  (so time travel and the pinned input versions of training datasets work as in DuckDB); Spark
  reads exactly those Parquet files with the table's schema. Local tables go through Spark's own
  vectorized Parquet reader; tables on an object store (``s3://``) are read by the executors with
  Arrow's filesystem, which needs no Hadoop S3 jars either.
* **write** (:func:`write`): every executor task writes its rows as Parquet files into the
  table's directory (Arrow's writer, the table's exact Arrow types) and reports each file's path,
  size, row count and statistics;
* **commit** (:func:`commit`): the driver commits the reported files, and removes the files an
  upsert rewrote, as **one** Delta transaction through delta-rs. Until then the files are invisible
  to every reader; a failure anywhere deletes them again (:func:`discard`), so nothing is committed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from fti.errors import BackendError, NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable
    from pyspark.sql import DataFrame, SparkSession

    from fti.features._project import FeatureProject

FILE_COLUMN = "__fti_file"
"""With ``read(..., with_file=True)``: the Delta path (as in the log) of the file a row comes from."""
MAX_FILE_ROWS = 4_000_000
"""A writing task starts a new file after this many rows (about 100-200 MB of Parquet)."""
_WRITTEN = "path string, size long, rows long, stats string"


@dataclass(frozen=True)
class Table:
    """Where one Delta table of the offline store lives, and how to reach it."""

    uri: str
    """A local directory or an object-store URL (``s3://bucket/offline/<table>``)."""
    storage_options: dict[str, str] | None
    """delta-rs options (``AWS_ENDPOINT_URL``, ...) for an object store; None for local tables."""
    filesystem: tuple[str, dict[str, Any]] | None
    """For an object store: Arrow's filesystem kind and its options, rebuilt on the executors."""

    @property
    def local(self) -> bool:
        return self.filesystem is None

    def file_uri(self, path: str) -> str:
        """The full location of a file given by its Delta log path (relative, URL-encoded)."""
        return f"{self.uri.rstrip('/')}/{unquote(path)}"


@dataclass(frozen=True)
class Snapshot:
    """One version of a Delta table: its schema and data files (Delta log paths)."""

    table: Table
    version: int
    schema: pa.Schema
    files: tuple[str, ...]
    sizes: tuple[int, ...]


def table(project: FeatureProject, name: str) -> Table:
    """The offline-store table ``name`` of ``project``.

    Raises:
        BackendError: the offline store is not the Delta store (the Spark engine reads Delta).
    """
    from fti.storage.offline.delta import DeltaOfflineStore

    offline = project.backends.offline
    if not isinstance(offline, DeltaOfflineStore):
        raise BackendError(
            f"the Spark engine reads and writes Delta tables, but the offline store is {type(offline).__name__}"
        )
    # The Delta offline store keeps table T at <url>/T (DeltaOfflineStore._uri).
    uri = f"{offline.url}/{name}"
    if "://" not in uri:
        return Table(uri, None, None)
    scheme = uri.split("://", 1)[0].lower()
    if scheme not in ("s3", "s3a"):
        raise BackendError(f"the Spark engine reads local and s3:// offline stores, not {scheme}://")
    settings = project.settings
    options: dict[str, Any] = {}
    if settings.s3_endpoint_url is not None:
        endpoint = settings.s3_endpoint_url
        options["endpoint_override"] = endpoint.split("://", 1)[-1]
        options["scheme"] = endpoint.split("://", 1)[0] if "://" in endpoint else "https"
    if settings.s3_region is not None:
        options["region"] = settings.s3_region
    store_options = offline.storage_options  # with the credentials of FTI_S3_SECRET, if set
    for option, name in (("access_key", "AWS_ACCESS_KEY_ID"), ("secret_key", "AWS_SECRET_ACCESS_KEY"),
                         ("session_token", "AWS_SESSION_TOKEN")):  # fmt: skip
        if name in store_options:
            options[option] = store_options[name]
    return Table(uri, store_options or None, ("s3", options))


def _delta(location: Table, version: int | None = None) -> DeltaTable:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(location.uri, version=version, storage_options=location.storage_options)
    except TableNotFoundError as exc:
        raise NotFoundError(f"offline table {location.uri} does not exist") from exc
    except Exception as exc:
        raise NotFoundError(f"offline table {location.uri} has no version {version}: {exc}") from exc
    return dt


def exists(location: Table) -> bool:
    from deltalake import DeltaTable

    return bool(DeltaTable.is_deltatable(location.uri, storage_options=location.storage_options))


def snapshot(location: Table, version: int | None = None) -> Snapshot | None:
    """The data files of ``location`` at ``version`` (None = latest), as delta-rs lists them; None
    when the table does not exist yet.

    Raises:
        NotFoundError: no such version.
        BackendError: the table needs reader features beyond plain files (deletion vectors,
            column mapping), which reading files directly would get wrong.
    """
    import pyarrow as pa

    if version is None and not exists(location):
        return None
    dt = _delta(location, version)
    if dt.protocol().min_reader_version > 1:
        raise BackendError(
            f"offline table {location.uri} uses Delta reader features (reader version "
            f"{dt.protocol().min_reader_version}) that the Spark engine cannot read as plain Parquet files"
        )
    actions = pa.table(dt.get_add_actions(flatten=False))
    return Snapshot(
        location,
        int(dt.version()),
        pa.schema(dt.schema().to_arrow()),
        tuple(actions.column("path").to_pylist()),
        tuple(int(size) for size in actions.column("size_bytes").to_pylist()),
    )


# --- reading --------------------------------------------------------------------------------------
def read(
    spark: SparkSession, source: Snapshot, columns: Sequence[str] | None = None, *, with_file: bool = False
) -> DataFrame:
    """The rows of a table version as a Spark DataFrame with the table's schema (columns a file
    lacks, added later by ``fg.append_features``, read as nulls); ``columns`` selects some.

    With ``with_file``, :data:`FILE_COLUMN` holds each row's file (its Delta log path), which an
    upsert needs to know which files to rewrite.
    """
    import pyarrow as pa
    from pyspark.sql import functions as F

    from fti.spark.types import struct_of_arrow

    schema = source.schema if columns is None else pa.schema([source.schema.field(c) for c in columns])
    struct = struct_of_arrow(schema)
    if not source.files:
        empty = spark.createDataFrame([], struct)
        return empty.withColumn(FILE_COLUMN, F.lit(None).cast("string")) if with_file else empty
    location = source.table
    if location.local:
        df = spark.read.schema(struct).parquet(*[location.file_uri(p) for p in source.files])
        if with_file:
            # Spark names files by URI; the file name is the Delta path (fti's tables are not partitioned).
            names = {p.rsplit("/", 1)[-1]: p for p in source.files}
            if len(names) != len(source.files):
                raise BackendError(f"offline table {location.uri} has data files in subdirectories")
            df = df.withColumn(FILE_COLUMN, F.regexp_extract(F.col("_metadata.file_path"), r"([^/]*)$", 1))
            if any(name != path for name, path in names.items()):
                mapping = F.create_map(*[F.lit(x) for pair in names.items() for x in pair])
                df = df.withColumn(FILE_COLUMN, mapping[F.col(FILE_COLUMN)])
        return df
    return _read_remote(spark, source, schema, with_file)


def _read_remote(spark: SparkSession, source: Snapshot, schema: pa.Schema, with_file: bool) -> DataFrame:
    """Files on an object store, read by the executors with Arrow (no Hadoop S3 jars needed)."""
    import pyarrow as pa

    from fti.spark.types import struct_of_arrow

    location = source.table
    out_schema = schema.append(pa.field(FILE_COLUMN, pa.string())) if with_file else schema
    struct = struct_of_arrow(out_schema)
    listing = spark.createDataFrame([(path,) for path in source.files], "path string")
    listing = listing.repartition(min(len(source.files), spark.sparkContext.defaultParallelism))

    def read_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq

        fs = _filesystem(location)
        for batch in batches:
            for path in batch.column(0).to_pylist():
                parquet = pq.ParquetFile(_fs_path(location.file_uri(path)), filesystem=fs)
                present = set(parquet.schema_arrow.names)
                for data in parquet.iter_batches(columns=[c for c in schema.names if c in present]):
                    yield _conformed(data, out_schema, path)

    return listing.mapInArrow(read_files, struct)


def _conformed(batch: pa.RecordBatch, schema: pa.Schema, path: str) -> pa.RecordBatch:
    """``batch`` with ``schema``'s columns and types: absent columns null, the file column filled."""
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name == FILE_COLUMN:
            columns.append(pa.array([path] * batch.num_rows, pa.string()))
        elif field.name in batch.schema.names:
            column = batch.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(batch.num_rows, field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _filesystem(location: Table) -> Any:
    from pyarrow import fs

    if location.filesystem is None:
        return fs.LocalFileSystem()
    _, options = location.filesystem
    return fs.S3FileSystem(**options)


def _fs_path(uri: str) -> str:
    """A location as Arrow's filesystems take it: ``bucket/key`` for object stores."""
    return uri.split("://", 1)[1] if "://" in uri else uri


# --- writing --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Written:
    """A data file one task wrote (not yet committed)."""

    path: str
    """Its Delta log path, relative to the table."""
    size: int
    rows: int
    stats: str
    """Delta statistics JSON: ``numRecords``, ``nullCount``, and ``minValues``/``maxValues`` of
    integer, date and timestamp columns."""

    @property
    def null_counts(self) -> dict[str, int]:
        return dict(json.loads(self.stats)["nullCount"])


def write(df: DataFrame, location: Table, schema: pa.Schema) -> list[Written]:
    """Write ``df`` (whose columns are ``schema``'s, in order) as Parquet files into the table's
    directory from the executors, one or more files per partition; nothing is committed.

    Runs one Spark job. On failure the files written so far are deleted again.
    """
    from fti.spark.types import struct_of_arrow

    batch_id = uuid.uuid4().hex[:12]
    struct_of_arrow(schema)  # a clear error for types fti does not store, before any task runs

    def write_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield _write_task(batches, location, schema, batch_id)

    try:
        rows = df.mapInArrow(write_partition, _WRITTEN).collect()
    except BaseException:
        discard(location, batch_id=batch_id)
        raise
    return [Written(r["path"], int(r["size"]), int(r["rows"]), r["stats"]) for r in rows if r["rows"]]


def _write_task(
    batches: Iterator[pa.RecordBatch], location: Table, schema: pa.Schema, batch_id: str
) -> pa.RecordBatch:
    """One task's files: ``part-<partition>-<batch>-<attempt>-c<n>.snappy.parquet``, unique per task
    attempt, so a retried or speculative task never overwrites another's file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark import TaskContext

    context = TaskContext.get()
    partition, attempt = (context.partitionId(), context.taskAttemptId()) if context else (0, 0)
    fs = _filesystem(location)
    if location.local:  # a new table's directory (object stores have no directories to make)
        fs.create_dir(location.uri, recursive=True)
    done: list[tuple[str, int, int, str]] = []
    writer: Any = None
    sink: Any = None
    name = ""
    count = 0

    def finish() -> None:
        nonlocal writer
        if writer is None:
            return
        writer.close()
        size = sink.tell()
        sink.close()  # an object store completes the upload here
        metadata = writer.writer.metadata
        done.append((name, int(size), int(metadata.num_rows), json.dumps(_stats(metadata, schema))))
        writer = None

    for batch in batches:
        if not batch.num_rows:
            continue
        data = pa.Table.from_batches([batch]).cast(schema) if batch.schema != schema else batch
        if writer is None:
            name = f"part-{partition:05d}-{batch_id}-{attempt}-c{len(done):03d}.snappy.parquet"
            sink = fs.open_output_stream(_fs_path(location.file_uri(name)))
            writer = pq.ParquetWriter(sink, schema, compression="snappy")
            count = 0
        writer.write(data)
        count += data.num_rows
        if count >= MAX_FILE_ROWS:
            finish()
    finish()
    names, sizes, rows, stats = (
        (list(column) for column in zip(*done, strict=True)) if done else ([], [], [], [])
    )
    return pa.RecordBatch.from_arrays(
        [
            pa.array(names, pa.string()),
            pa.array(sizes, pa.int64()),
            pa.array(rows, pa.int64()),
            pa.array(stats),
        ],
        names=["path", "size", "rows", "stats"],
    )


def _stats(metadata: Any, schema: pa.Schema) -> dict[str, Any]:
    """Delta file statistics from a Parquet footer. Only exact bounds are recorded: integers,
    dates, and timestamps widened to whole milliseconds (the precision Delta's text form keeps)."""
    import pyarrow as pa

    nulls: dict[str, int] = {}
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    for index, field in enumerate(schema):
        bounded = (
            pa.types.is_integer(field.type)
            or pa.types.is_date(field.type)
            or pa.types.is_timestamp(field.type)
        )
        total, low, high, known = 0, None, None, True
        for group in range(metadata.num_row_groups):
            statistics = metadata.row_group(group).column(index).statistics
            if statistics is None or not statistics.has_null_count:
                known = False
                break
            total += statistics.null_count
            if bounded and statistics.has_min_max:
                low = statistics.min if low is None else min(low, statistics.min)
                high = statistics.max if high is None else max(high, statistics.max)
        if not known:
            continue
        nulls[field.name] = total
        if bounded and low is not None:
            lows[field.name], highs[field.name] = _bound(low, False), _bound(high, True)
    return {"numRecords": metadata.num_rows, "minValues": lows, "maxValues": highs, "nullCount": nulls}


def _bound(value: Any, upper: bool) -> Any:
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        floor = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if upper and floor != value:
            floor += timedelta(milliseconds=1)
        return floor.strftime("%Y-%m-%dT%H:%M:%S.") + f"{floor.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    return int(value)


def discard(location: Table, written: Sequence[Written] = (), *, batch_id: str | None = None) -> None:
    """Delete uncommitted files: those given, and with ``batch_id`` every file a :func:`write` call
    left (including those of failed task attempts). Never raises: the files are invisible anyway."""
    try:
        fs = _filesystem(location)
        paths = [_fs_path(location.file_uri(w.path)) for w in written]
        if batch_id is not None:
            from pyarrow.fs import FileSelector

            listing = fs.get_file_info(FileSelector(_fs_path(location.uri), allow_not_found=True))
            paths += [info.path for info in listing if f"-{batch_id}-" in info.base_name]
        for path in dict.fromkeys(paths):
            fs.delete_file(path)
    except Exception:  # best effort: uncommitted files are garbage no reader sees
        return


# --- committing -----------------------------------------------------------------------------------
def commit(
    location: Table,
    schema: pa.Schema,
    added: Sequence[Written],
    *,
    removed: Sequence[str] = (),
    read_version: int | None,
    operation: str,
) -> int:
    """Commit ``added`` files (and remove the ``removed`` Delta paths) as one Delta transaction on
    top of ``read_version`` (None: create the table); return the new version.

    A concurrent commit that conflicts (it removed a file this one removes) makes delta-rs refuse
    the commit. On any failure the added files are deleted and nothing is committed.

    Raises:
        BackendError: delta-rs refused or failed the commit.
    """
    from deltalake import Schema
    from deltalake.transaction import AddAction, CommitProperties, RemoveAction, create_table_with_add_actions

    now = int(time.time() * 1000)
    adds = [AddAction(w.path, w.size, {}, now, True, w.stats) for w in added]
    properties = CommitProperties(custom_metadata={"engine": "fti-spark", "fti.operation": operation})
    try:
        if read_version is None:
            create_table_with_add_actions(
                location.uri,
                Schema.from_arrow(schema),
                adds,
                mode="error",
                storage_options=location.storage_options,
                commit_properties=properties,
            )
            return 0
        dt = _delta(location, read_version)
        actions: list[Any] = [*adds, *(RemoveAction(p, True, now) for p in removed)]
        dt.create_write_transaction(actions, "append", dt.schema(), commit_properties=properties)
    except BaseException as exc:
        discard(location, added)
        if isinstance(exc, Exception):
            raise BackendError(
                f"committing to offline table {location.uri} failed (nothing was committed): {exc}"
            ) from exc
        raise
    return int(_delta(location).version())
