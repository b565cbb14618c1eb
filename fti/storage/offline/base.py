"""The offline-store Protocol: versioned tables of Arrow data with time travel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fti.storage.offline.scan import LocalFiles


@dataclass(frozen=True)
class TableCommit:
    """One commit of an offline table."""

    version: int
    timestamp: datetime
    operation: str
    """The storage's name of the operation (Delta: ``WRITE``, ``MERGE``, ``ADD COLUMN``...)."""
    rows: int | None = None
    """Rows the commit wrote (from its metrics), or None when it does not say."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """What the writer attached to the commit (``write(..., metadata=...)``)."""
    rows_removed: int | None = None
    """Rows of the previous version that the commit deleted or replaced (an upsert's updated rows):
    0 for an append and for commits that change no row (a compaction, a vacuum, a schema change);
    None when the storage does not say."""


class OfflineStore(Protocol):
    """Versioned tables addressed by name. Every write is one atomic commit.

    Invariants: a failed write leaves the previous version readable and current; versions are
    integers increasing by commit; timestamps are tz-aware UTC.
    """

    url: str

    def write(
        self,
        table: str,
        data: pa.Table | pa.RecordBatchReader,
        *,
        merge_keys: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Append ``data`` (creating the table on first write) and return the version that this
        commit created (never a version read back afterwards, which another writer may have made).

        With ``merge_keys``, rows whose keys match an existing row replace it (an upsert), so
        re-running the same write is idempotent, also when several writers race to create the
        table. ``data`` must match the table's schema. A ``RecordBatchReader`` is consumed as it
        is written and committed once at its end; if reading it raises, nothing is committed.
        ``metadata`` is stored with the commit and comes back in :meth:`history`.

        Raises:
            ConflictError: other writers' commits kept getting in the way (a table is retried a
                few times; a stream cannot be retried once read). Nothing was committed.
            SchemaError: the data does not match the table's schema.
            BackendError: the storage failed.
        """
        ...

    def dataset(self, table: str, *, version: int | datetime | None = None) -> ds.Dataset:
        """A lazily scanned Arrow dataset of the table at ``version`` (None = latest) or at a time."""
        ...

    def local_files(self, table: str, version: int) -> LocalFiles | None:
        """The table at ``version`` as plain Parquet files on local disk, or None when it cannot
        be read that way (an object store, or a table whose readers need more than its files)."""
        ...

    def added_rows(self, table: str, base: int, version: int) -> ds.Dataset | None:
        """The rows that the commits after ``base`` up to ``version`` added, as a dataset, when
        those commits only added data (no row deleted, replaced or rewritten, as a compaction
        does); None otherwise, and when the storage cannot tell."""
        ...

    def version(self, table: str) -> int | None:
        """The latest version, or None when the table does not exist."""
        ...

    def schema(self, table: str) -> pa.Schema | None:
        """The table's current Arrow schema, or None when the table does not exist."""
        ...

    def history(self, table: str, *, since: int | None = None) -> list[TableCommit]:
        """Every commit, oldest first; with ``since``, only the commits from version ``since`` on
        (reading only those)."""
        ...

    def delete_rows(self, table: str, keys: pa.Table, *, metadata: Mapping[str, str] | None = None) -> int:
        """Delete the rows whose values in every column of ``keys`` equal one row of ``keys``, as
        one commit; returns its version (a commit is made even when no row matched).

        Raises:
            NotFoundError: the table does not exist.
            ConflictError: other writers' commits kept getting in the way; nothing was deleted.
        """
        ...

    def add_columns(self, table: str, fields: Sequence[pa.Field]) -> int:
        """Add nullable columns (existing rows read as null); returns the new version."""
        ...

    def compact(self, table: str) -> int | None:
        """Rewrite the table's small data files into fewer large ones, as one commit that changes
        no row; returns its version, or None when there was nothing to compact. Older versions
        stay readable until :meth:`vacuum` removes the files they need."""
        ...

    def vacuum(self, table: str, retention: timedelta) -> int:
        """Delete the data files that no version newer than ``retention`` needs (files replaced
        by a compaction or merge longer ago than that); returns how many were deleted. Versions
        that needed them can no longer be read."""
        ...

    def delete(self, table: str) -> None:
        """Remove the table and all its history. Deleting a missing table is a no-op."""
        ...
