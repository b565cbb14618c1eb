"""Committing checked data to a feature group: the offline commit, its record, the online upsert.

:class:`~fti.features.feature_group.FeatureGroup` checks data with :mod:`fti.features.ingestion`
and then calls these functions. Order of operations (ARCHITECTURE.md invariant 4, "nothing
lost"): the Delta commit is the source of truth; the catalog record and the online upsert follow
it, and :func:`materialize` catches the online store up if a crash interrupts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from fti.features import ingestion, records
from fti.features.ingestion import InsertResult

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup


def insert(
    fg: FeatureGroup,
    table: pa.Table,
    status: str,
    report: dict[str, Any] | None,
    *,
    merge: bool = True,
    with_statistics: bool = True,
) -> InsertResult:
    """Commit a checked ``table`` offline (a merge on the key columns when ``merge`` and the table
    exists), record the commit and upsert its latest rows online when the group is online-enabled."""
    offline = fg.project.backends.offline
    previous = offline.version(fg.table_name)
    merge_keys = fg.key_columns
    upsert = merge and previous is not None
    version = offline.write(fg.table_name, table, merge_keys=merge_keys if upsert else None)
    stats = None
    if with_statistics:
        from fti.features.statistics import compute_statistics  # DuckDB: only when needed

        # On the first commit the table is exactly this insert: skip re-reading it from disk.
        stats = compute_statistics(
            table if previous is None else offline.dataset(fg.table_name, version=version)
        )
    record(fg, version, "insert", table.num_rows, status, report, stats)
    online_rows = 0
    if fg.online_enabled:
        online = fg.project.backends.online
        if online.applied_version(fg.table_name) == previous:
            latest = ingestion.latest_per_key(table, fg.primary_key, fg.event_time)
            online_rows = online.write(
                fg.table_name,
                latest,
                key_columns=fg.primary_key,
                event_time=fg.event_time,
                version=version,
            )
        else:  # the online store missed an earlier commit: catch up from the offline table
            online_rows = materialize(fg)
    return InsertResult(
        version=version, rows=table.num_rows, validation=status, report=report, online_rows=online_rows
    )


def write_stream(
    fg: FeatureGroup,
    first: pa.Table,
    pieces: Iterable[Any],
    validation: str,
    *,
    merge: bool,
    unique_keys: bool,
) -> tuple[int, int]:
    """Write the checked table ``first`` and every piece of ``pieces`` (each checked just before it
    is written) as one offline commit; return its version and row count.

    Nothing is committed when a piece fails its checks or ``pieces`` raises: that exception
    propagates. The caller records the commit.
    """
    import pyarrow as pa

    rest = iter(pieces)
    failure: list[BaseException] = []
    rows = 0

    def checked() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        try:
            current: pa.Table | None = first
            while current is not None:
                rows += current.num_rows
                yield from current.to_batches()
                piece = next(rest, None)
                if piece is None:
                    current = None
                else:
                    current, _ = ingestion.prepare(fg, piece, check_unique=not unique_keys)
                    ingestion.run_validation(fg, current, validation)
        except BaseException as exc:  # surfaces through the writer as a generic error
            failure.append(exc)
            raise

    offline = fg.project.backends.offline
    merge_keys = fg.key_columns
    upsert = merge and offline.version(fg.table_name) is not None
    reader = pa.RecordBatchReader.from_batches(first.schema, checked())
    try:
        version = offline.write(fg.table_name, reader, merge_keys=merge_keys if upsert else None)
    except Exception:
        if failure:
            raise failure[0] from None
        raise
    return version, rows


def record(
    fg: FeatureGroup,
    version: int,
    operation: str,
    rows: int,
    status: str,
    report: dict[str, Any] | None,
    stats: dict[str, Any] | None = None,
) -> None:
    """Add offline commit ``version`` to the group's history in the catalog."""
    records.record_commit(
        fg.project.backends.catalog,
        fg.id,
        delta_version=version,
        operation=operation,
        rows=rows,
        status=status,
        report=report,
        statistics=stats,
    )


def materialize(fg: FeatureGroup) -> int:
    """Bring the online store up to the latest offline commit; returns rows written (0 when the
    group is offline-only or already up to date)."""
    if not fg.online_enabled:
        return 0
    offline = fg.project.backends.offline
    online = fg.project.backends.online
    version = offline.version(fg.table_name)
    if version is None or online.applied_version(fg.table_name) == version:
        return 0
    latest = ingestion.latest_per_key(
        offline.dataset(fg.table_name, version=version), fg.primary_key, fg.event_time
    )
    return online.write(
        fg.table_name, latest, key_columns=fg.primary_key, event_time=fg.event_time, version=version
    )
