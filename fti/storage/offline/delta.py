"""Delta Lake offline store (delta-rs) on a local directory or an object-store URL."""

from __future__ import annotations

import math
import random
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, ConflictError, FtiError, NotFoundError, SchemaError
from fti.storage.offline.base import TableCommit

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    from deltalake import DeltaTable, WriterProperties

    from fti.storage.offline.scan import LocalFiles


METADATA_PREFIX = "fti."
"""The writer's metadata is stored in the commit info under keys with this prefix."""
COMMIT_ATTEMPTS = 6
"""How often a write whose commit lost a race with another writer is attempted in all."""


class _Conflict(Exception):
    """Another writer's commit got in the way of this attempt (internal: becomes a retry or a
    ConflictError)."""


class _Tracked:
    """A stream of record batches that remembers whether the writer has read from it (a stream
    that was read cannot be written again)."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self._reader = reader
        self.consumed = False

    def _batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self._reader:
            self.consumed = True
            yield batch

    def reader(self) -> pa.RecordBatchReader:
        import pyarrow as pa

        return pa.RecordBatchReader.from_batches(self._reader.schema, self._batches())


class DeltaOfflineStore:
    """Each table is a Delta table under ``url``; a commit is a Delta version."""

    def __init__(self, url: str, storage_options: dict[str, str] | None = None) -> None:
        self.url = url.removeprefix("file://").rstrip("/")
        self._local = "://" not in self.url
        self._storage_options = storage_options
        if self._local:
            from pathlib import Path

            Path(self.url).mkdir(parents=True, exist_ok=True)

    @property
    def storage_options(self) -> dict[str, str]:
        """The delta-rs (object_store) options the store opens its tables with (Spark reuses them)."""
        return dict(self._storage_options or {})

    def _failure(self, doing: str, exc: BaseException) -> FtiError:
        """The error to raise for a storage failure (on S3: naming the setting to fix)."""
        if self._local:
            return BackendError(f"{doing} failed: {exc}")
        from fti.storage._s3 import s3_error

        endpoint = (self._storage_options or {}).get("AWS_ENDPOINT_URL")
        return s3_error(exc, doing, self.url, "FTI_OFFLINE_URL", endpoint)

    def _uri(self, table: str) -> str:
        return f"{self.url}/{table}"

    def _table(self, table: str, version: int | datetime | None = None) -> DeltaTable:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        try:
            dt = DeltaTable(self._uri(table), storage_options=self._storage_options)
        except TableNotFoundError as exc:
            raise NotFoundError(f"offline table {table!r} does not exist at {self.url}") from exc
        except (OSError, DeltaError) as exc:
            raise self._failure(f"opening offline table {table!r}", exc) from exc
        if version is None:
            return dt
        latest = dt.version()
        try:
            dt.load_as_version(version)
        except Exception as exc:
            if isinstance(version, datetime):
                raise NotFoundError(
                    f"offline table {table!r} has no version at {version.isoformat()}: {exc}"
                ) from exc
            raise NotFoundError(
                f"offline table {table!r} has no version {version}: its versions are 0 to {latest}",
                details={"latest": latest},
            ) from exc
        if isinstance(version, datetime) and dt.version() == 0:
            # delta-rs answers a time before the first commit with version 0; time travel to a
            # time when the table did not exist yet must not return data written later.
            first = self._commit_time(table, 0)
            if first is not None and version < first:
                raise NotFoundError(
                    f"offline table {table!r} has no version at {version.isoformat()}: its first "
                    f"commit was at {first.isoformat()}",
                    details={"first_commit_at": first.isoformat()},
                )
        return dt

    def _commit_time(self, table: str, version: int) -> datetime | None:
        # history() labels entries by counting back from the loaded snapshot, so read it from the
        # latest snapshot; only needed when a time resolves to version 0
        for commit in self.history(table):
            if commit.version == version:
                return commit.timestamp
        return None

    def write(
        self,
        table: str,
        data: pa.Table | pa.RecordBatchReader,
        *,
        merge_keys: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        import pyarrow as pa

        replayable = not isinstance(data, pa.RecordBatchReader)
        source = data if replayable else _Tracked(data)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                return self._commit(table, source, merge_keys, metadata)
            except _Conflict as conflict:
                consumed = isinstance(source, _Tracked) and source.consumed
                if consumed or attempt == COMMIT_ATTEMPTS:
                    why = (
                        "the data was a stream, which cannot be written twice"
                        if consumed
                        else f"it conflicted {attempt} times in a row"
                    )
                    raise ConflictError(
                        f"another writer committed to offline table {table!r} at the same time and "
                        f"{why}: nothing was committed; retry the write ({conflict})"
                    ) from conflict.__cause__
                # Another writer won the commit (or created the table first): a merge re-reads the
                # table and an append re-bases on it, so the retry is exact. Jitter keeps two
                # retrying writers from colliding again.
                time.sleep(random.uniform(0.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    def _commit(
        self,
        table: str,
        data: pa.Table | _Tracked,
        merge_keys: Sequence[str] | None,
        metadata: Mapping[str, str] | None,
    ) -> int:
        """One attempt; returns the version this commit created. Raises ``_Conflict`` when another
        writer's commit got in the way and the attempt can be repeated."""
        from deltalake import CommitProperties, DeltaTable, write_deltalake
        from deltalake.exceptions import CommitFailedError, SchemaMismatchError, TableNotFoundError

        payload: Any = data.reader() if isinstance(data, _Tracked) else data
        properties_of_files = writer_properties(payload.schema)
        custom = {METADATA_PREFIX + k: str(v) for k, v in (metadata or {}).items()}
        try:
            try:
                dt: DeltaTable | None = DeltaTable(self._uri(table), storage_options=self._storage_options)
            except TableNotFoundError:
                dt = None
            if dt is None:
                # Creating the table is version 0. delta-rs would re-base a create that lost the
                # race onto the winner's table as version 1 (a blind append, duplicating an upsert's
                # rows): with no commit retries the loser fails instead, and retries as a merge.
                write_deltalake(
                    self._uri(table),
                    payload,
                    mode="error",
                    storage_options=self._storage_options,
                    writer_properties=properties_of_files,
                    commit_properties=CommitProperties(custom_metadata=custom, max_commit_retries=0),
                )
                return 0
            properties = CommitProperties(custom_metadata=custom)
            if merge_keys:
                predicate = " AND ".join(f't."{k}" = s."{k}"' for k in merge_keys)
                (
                    dt.merge(
                        payload,
                        predicate=predicate,
                        source_alias="s",
                        target_alias="t",
                        writer_properties=properties_of_files,
                        commit_properties=properties,
                    )
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute()
                )
            else:
                write_deltalake(
                    dt,
                    payload,
                    mode="append",
                    writer_properties=properties_of_files,
                    commit_properties=properties,
                )
            # The table object holds the snapshot its own commit produced: reading the version back
            # from storage could see another writer's later commit.
            return int(dt.version())
        except CommitFailedError as exc:
            raise _Conflict(str(exc)) from exc
        except SchemaMismatchError as exc:
            raise SchemaError(
                f"the data does not match the schema of offline table {table!r} (was it created "
                f"concurrently with other columns?): {exc}"
            ) from exc
        except FtiError:
            raise
        except Exception as exc:
            if "already exists" in str(exc):  # created by another writer since we looked
                raise _Conflict(str(exc)) from exc
            raise self._failure(f"writing offline table {table!r}", exc) from exc

    def dataset(self, table: str, *, version: int | datetime | None = None) -> ds.Dataset:
        return _in_commit_order(self._table(table, version))

    def local_files(self, table: str, version: int) -> LocalFiles | None:
        import pyarrow as pa

        from fti.storage.offline.scan import LocalFiles

        if not self._local:
            return None
        dt = self._table(table, version)
        if dt.protocol().min_reader_version > 1:  # column mapping or deletion vectors: not plain files
            return None
        root = self._uri(table)
        added = _added_at(dt)
        paths = sorted(dt.file_uris()[::-1], key=lambda uri: added.get(uri.removeprefix(root + "/")) or 0)
        return LocalFiles(
            tuple(paths),
            pa.schema(dt.schema().to_arrow()),
            lambda: _in_commit_order(dt),  # the same snapshot, for query engines
        )

    def added_rows(self, table: str, base: int, version: int) -> ds.Dataset | None:
        import pyarrow.dataset as ds

        if base >= version:
            return None
        current = self._table(table, version)
        if current.protocol().min_reader_version > 1:  # deletion vectors delete rows in place
            return None
        before = set(_added_at(self._table(table, base)))
        now = _added_at(current)
        if not before.issubset(now):  # a file was removed: rows were deleted, replaced or rewritten
            return None
        dataset = _in_commit_order(current)
        fragments = [f for f in dataset.get_fragments() if f.path not in before]
        if len(fragments) != len(now) - len(before):  # paths not spelled alike: cannot tell
            return None
        return ds.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)

    def version(self, table: str) -> int | None:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        try:
            return int(DeltaTable(self._uri(table), storage_options=self._storage_options).version())
        except TableNotFoundError:
            return None
        except (OSError, DeltaError) as exc:
            raise self._failure(f"reading the version of offline table {table!r}", exc) from exc

    def schema(self, table: str) -> pa.Schema | None:
        import pyarrow as pa

        try:
            dt = self._table(table)
        except NotFoundError:
            return None
        return pa.schema(dt.schema().to_arrow())

    def history(self, table: str, *, since: int | None = None) -> list[TableCommit]:
        dt = self._table(table)
        limit = None if since is None else max(int(dt.version()) - since + 1, 0)
        if limit == 0:
            return []
        commits: list[TableCommit] = []
        for entry in dt.history(limit):
            if int(entry.get("version", -1)) < 0:
                continue
            metrics = entry.get("operationMetrics") or {}
            rows = metrics.get("num_source_rows", metrics.get("num_added_rows"))
            commits.append(
                TableCommit(
                    version=int(entry["version"]),
                    timestamp=datetime.fromtimestamp(int(entry["timestamp"]) / 1000, UTC),
                    operation=str(entry.get("operation", "")),
                    rows=None if rows is None else int(rows),
                    metadata={
                        k.removeprefix(METADATA_PREFIX): str(v)
                        for k, v in entry.items()
                        if k.startswith(METADATA_PREFIX)
                    },
                    rows_removed=_rows_removed(entry),
                )
            )
        return sorted(commits, key=lambda c: c.version)

    def delete_rows(self, table: str, keys: pa.Table, *, metadata: Mapping[str, str] | None = None) -> int:
        from deltalake import CommitProperties
        from deltalake.exceptions import CommitFailedError

        custom = {METADATA_PREFIX + k: str(v) for k, v in (metadata or {}).items()}
        predicate = " AND ".join(f't."{k}" = s."{k}"' for k in keys.column_names)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            dt = self._table(table)
            try:
                (
                    dt.merge(
                        keys,
                        predicate=predicate,
                        source_alias="s",
                        target_alias="t",
                        commit_properties=CommitProperties(custom_metadata=custom),
                    )
                    .when_matched_delete()
                    .execute()
                )
                return int(dt.version())  # this commit's version (see write)
            except CommitFailedError as exc:
                if attempt == COMMIT_ATTEMPTS:
                    raise ConflictError(
                        f"another writer committed to offline table {table!r} at the same time, "
                        f"{attempt} times in a row: nothing was deleted; retry ({exc})"
                    ) from exc
                time.sleep(random.uniform(0.0, 0.05 * 2**attempt))
            except FtiError:
                raise
            except Exception as exc:
                raise BackendError(f"deleting rows of offline table {table!r} failed: {exc}") from exc
        raise AssertionError("unreachable")

    def add_columns(self, table: str, fields: Sequence[pa.Field]) -> int:
        from deltalake.exceptions import CommitFailedError
        from deltalake.schema import Field as DeltaField

        dt = self._table(table)
        delta_fields: list[Any] = [DeltaField.from_arrow(field.with_nullable(True)) for field in fields]
        try:
            dt.alter.add_columns(delta_fields)
        except CommitFailedError as exc:
            raise ConflictError(
                f"another writer changed offline table {table!r} at the same time: no column was "
                f"added; retry ({exc})"
            ) from exc
        return int(dt.version())  # this commit's version (see write)

    def compact(self, table: str) -> int | None:
        try:
            metrics = self._table(table).optimize.compact()
        except NotFoundError:
            raise
        except Exception as exc:
            raise self._failure(f"compacting offline table {table!r}", exc) from exc
        if not int(metrics.get("numFilesRemoved", 0)):
            return None
        return self.version(table)

    def vacuum(self, table: str, retention: timedelta) -> int:
        # delta-rs counts retention in whole hours: round up, never delete what should be kept
        hours = math.ceil(retention.total_seconds() / 3600)
        try:
            removed = self._table(table).vacuum(
                retention_hours=hours, dry_run=False, enforce_retention_duration=False
            )
        except NotFoundError:
            raise
        except Exception as exc:
            raise self._failure(f"vacuuming offline table {table!r}", exc) from exc
        return len(removed)

    def delete(self, table: str) -> None:
        if self._local:
            shutil.rmtree(self._uri(table), ignore_errors=True)
            return
        from fti.storage._filesystems import fsspec_options, url_to_fs

        fs, path = url_to_fs(self._uri(table), **fsspec_options(self._storage_options or {}))
        if fs.exists(path):
            fs.rm(path, recursive=True)


def writer_properties(schema: pa.Schema) -> WriterProperties:
    """How the Parquet files of data with ``schema`` are written: floating-point columns without
    dictionary encoding.

    Continuous features are nearly all distinct values, so the writer builds a dictionary only to
    abandon it at its size limit; at 1M rows x 20 float columns those tries cost two thirds of the
    write (1.2 s against 0.4 s), for files only about 7 % smaller. Other columns (keys, categories,
    labels) keep the writer's default.
    """
    import pyarrow as pa
    from deltalake import ColumnProperties, WriterProperties

    plain = {
        f.name: ColumnProperties(dictionary_enabled=False) for f in schema if pa.types.is_floating(f.type)
    }
    return WriterProperties(column_properties=plain or None)


_UNCHANGED_ROWS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END", "ADD COLUMN", "SET TBLPROPERTIES"})
"""Delta operations that rewrite or describe files without changing any row."""


def _rows_removed(entry: Mapping[str, Any]) -> int | None:
    """Rows of the previous version that a Delta commit deleted or replaced, from its metrics."""
    operation = str(entry.get("operation", ""))
    metrics = entry.get("operationMetrics") or {}
    if operation in _UNCHANGED_ROWS:
        return 0
    if operation == "WRITE":  # an append (or the create); an overwrite replaces every row
        mode = str((entry.get("operationParameters") or {}).get("mode", ""))
        return 0 if mode in ("Append", "ErrorIfExists") else None
    if operation == "MERGE":
        updated, deleted = metrics.get("num_target_rows_updated"), metrics.get("num_target_rows_deleted")
        return None if updated is None or deleted is None else int(updated) + int(deleted)
    if operation == "DELETE" and metrics.get("num_deleted_rows") is not None:
        return int(metrics["num_deleted_rows"])
    return None


def _in_commit_order(dt: DeltaTable) -> ds.Dataset:
    """The snapshot's dataset with its files in commit order, the oldest first, so a scan returns
    rows in the order they were written (a row an upsert rewrote moves with its new file).

    delta-rs lists the files of a snapshot newest commit first; they are ordered by the time the
    writer added them, ties (one commit, or commits within a millisecond) in reverse listing order.
    """
    import pyarrow.dataset as ds

    dataset = dt.to_pyarrow_dataset()
    fragments = list(dataset.get_fragments())[::-1]
    if len(fragments) < 2:
        return dataset
    added = _added_at(dt)
    fragments.sort(key=lambda fragment: added.get(fragment.path) or 0)
    return ds.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)


def _added_at(dt: DeltaTable) -> dict[str, int]:
    """When each data file of the snapshot was added (ms since the epoch), by relative path."""
    import pyarrow as pa

    # read as a stream: pa.table() would import pandas to ask whether this is a DataFrame
    actions = pa.RecordBatchReader.from_stream(dt.get_add_actions(flatten=False)).read_all()
    actions = actions.select(["path", "modification_time"])
    return dict(zip(actions.column(0).to_pylist(), actions.column(1).to_pylist(), strict=True))
