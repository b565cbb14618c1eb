"""Delta Lake offline store (delta-rs) on a local directory or an object-store URL."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, NotFoundError
from fti.storage.offline.base import TableCommit

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    from deltalake import DeltaTable

    from fti.storage.offline.scan import LocalFiles


class DeltaOfflineStore:
    """Each table is a Delta table under ``url``; a commit is a Delta version."""

    def __init__(self, url: str, storage_options: dict[str, str] | None = None) -> None:
        self.url = url.removeprefix("file://").rstrip("/")
        self._local = "://" not in self.url
        self._storage_options = storage_options
        if self._local:
            from pathlib import Path

            Path(self.url).mkdir(parents=True, exist_ok=True)

    def _uri(self, table: str) -> str:
        return f"{self.url}/{table}"

    def _table(self, table: str, version: int | datetime | None = None) -> DeltaTable:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            dt = DeltaTable(self._uri(table), storage_options=self._storage_options)
        except TableNotFoundError as exc:
            raise NotFoundError(f"offline table {table!r} does not exist at {self.url}") from exc
        if version is not None:
            try:
                dt.load_as_version(version)
            except Exception as exc:
                raise NotFoundError(
                    f"offline table {table!r} has no version {version!r}: {exc}. "
                    "Use commits() to list the available versions."
                ) from exc
        return dt

    def write(
        self, table: str, data: pa.Table | pa.RecordBatchReader, *, merge_keys: Sequence[str] | None = None
    ) -> int:
        from deltalake import write_deltalake

        current = self.version(table)
        try:
            if current is None or not merge_keys:
                write_deltalake(self._uri(table), data, mode="append", storage_options=self._storage_options)
            else:
                predicate = " AND ".join(f't."{k}" = s."{k}"' for k in merge_keys)
                (
                    self._table(table)
                    .merge(data, predicate=predicate, source_alias="s", target_alias="t")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute()
                )
        except (NotFoundError, BackendError):
            raise
        except Exception as exc:
            raise BackendError(f"writing offline table {table!r} failed: {exc}") from exc
        new = self.version(table)
        assert new is not None
        return new

    def dataset(self, table: str, *, version: int | datetime | None = None) -> ds.Dataset:
        return self._table(table, version).to_pyarrow_dataset()

    def local_files(self, table: str, version: int) -> LocalFiles | None:
        import pyarrow as pa

        from fti.storage.offline.scan import LocalFiles

        if not self._local:
            return None
        dt = self._table(table, version)
        if dt.protocol().min_reader_version > 1:  # column mapping or deletion vectors: not plain files
            return None
        return LocalFiles(
            tuple(dt.file_uris()),
            pa.schema(dt.schema().to_arrow()),
            dt.to_pyarrow_dataset,  # the same snapshot, for query engines
        )

    def version(self, table: str) -> int | None:
        from deltalake import DeltaTable

        uri = self._uri(table)
        if not DeltaTable.is_deltatable(uri, storage_options=self._storage_options):
            return None
        return int(DeltaTable(uri, storage_options=self._storage_options).version())

    def history(self, table: str) -> list[TableCommit]:
        commits: list[TableCommit] = []
        for entry in self._table(table).history():
            commits.append(
                TableCommit(
                    version=int(entry["version"]),
                    timestamp=datetime.fromtimestamp(int(entry["timestamp"]) / 1000, UTC),
                    operation=str(entry.get("operation", "")),
                )
            )
        return sorted(commits, key=lambda c: c.version)

    def add_columns(self, table: str, fields: Sequence[pa.Field]) -> int:
        from deltalake.schema import Field as DeltaField

        dt = self._table(table)
        delta_fields: list[Any] = [DeltaField.from_arrow(field.with_nullable(True)) for field in fields]
        dt.alter.add_columns(delta_fields)
        new = self.version(table)
        assert new is not None
        return new

    def compact(self, table: str) -> int | None:
        try:
            metrics = self._table(table).optimize.compact()
        except NotFoundError:
            raise
        except Exception as exc:
            raise BackendError(f"compacting offline table {table!r} failed: {exc}") from exc
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
            raise BackendError(f"vacuuming offline table {table!r} failed: {exc}") from exc
        return len(removed)

    def delete(self, table: str) -> None:
        if self._local:
            shutil.rmtree(self._uri(table), ignore_errors=True)
            return
        from fti.storage._filesystems import url_to_fs

        fs, path = url_to_fs(self._uri(table), **(self._storage_options or {}))
        if fs.exists(path):
            fs.rm(path, recursive=True)
