"""Committing checked data to a feature group: the offline commit, its record (with the statistics
of :mod:`fti.features.group_statistics`), the online upsert.

:class:`~fti.features.feature_group.FeatureGroup` checks data with :mod:`fti.features.ingestion`
and then calls these functions. Order of operations (ARCHITECTURE.md invariant 4, "nothing
lost"): the write is entered in the catalog (:func:`writing`); the Delta commit is the source of
truth; the catalog record (which ends the write's entry) and the online upsert follow it, and
:func:`reconcile` and :func:`materialize` catch up if a crash interrupts them (on ``fti.connect``
for the groups :mod:`fti.features.recovery` finds behind).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fti import _process
from fti.features import embeddings, group_statistics, ingestion, records
from fti.features.ingestion import InsertResult

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup

log = logging.getLogger(__name__)


@contextmanager
def writing(fg: FeatureGroup) -> Iterator[None]:
    """Enter a write of ``fg`` in the catalog for the block, which commits to the offline table
    and records the commit: an entry left by a writer that died in the block tells the next
    ``fti.connect`` to catch the group up (:mod:`fti.features.recovery`).

    When the block raises, it may have committed offline without recording it: the commits the
    catalog lacks are recorded from the offline table before the entry is removed; if that fails
    as well, the entry stays for the next connect.
    """
    catalog = fg.project.backends.catalog
    with catalog.pinned():  # the entry, the record and the statistics state: several transactions
        write = records.begin_write(catalog, fg.id, _process.identity())
        try:
            yield
        except Exception:
            try:
                reconcile(fg)
                records.end_writes(catalog, [write])
            except Exception as exc:  # the original error matters more; the next connect catches up
                log.debug("the failed write of feature group %r stays entered: %s", fg.name, exc)
            raise
        records.end_writes(catalog, [write])


def insert(
    fg: FeatureGroup,
    table: pa.Table,
    status: str,
    report: dict[str, Any] | None,
    *,
    merge: bool = True,
    with_statistics: bool = True,
) -> InsertResult:
    """Commit a checked ``table`` offline (a merge on the key columns when ``merge``), record the
    commit and upsert its latest rows online when the group is online-enabled."""
    offline = fg.project.backends.offline
    with writing(fg):
        early = group_statistics.ahead(fg, table) if with_statistics else None
        version = offline.write(
            fg.table_name,
            table,
            merge_keys=fg.key_columns if merge else None,
            metadata={"operation": "insert", "validation": status},
        )
        stats = (
            group_statistics.at_commit(fg, table, version, merged=merge, early=early)
            if with_statistics
            else None
        )
        record(fg, version, "insert", table.num_rows, status, report, stats)
    online_rows = 0
    if fg.online_enabled:
        online = fg.project.backends.online
        if online.applied_version(fg.table_name) == (version - 1 if version else None):
            latest = ingestion.latest_per_key(table, fg.primary_key, fg.event_time)
            online_rows = online.write(
                fg.table_name,
                latest,
                key_columns=fg.primary_key,
                event_time=fg.event_time,
                version=version,
            )
            if fg.embedding_index_record is not None:  # the index follows the online rows
                embeddings.sync(fg, latest, version)
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
    metadata: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """Write the checked table ``first`` and every piece of ``pieces`` (each checked just before it
    is written) as one offline commit (with ``metadata`` beside fti's own); return its version
    and row count.

    Nothing is committed when a piece fails its checks or ``pieces`` raises: that exception
    propagates. The caller records the commit, within :func:`writing` like this call.
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
    reader = pa.RecordBatchReader.from_batches(first.schema, checked())
    status = "none" if validation == "none" or fg.expectation_suite is None else "passed"
    try:
        version = offline.write(
            fg.table_name,
            reader,
            merge_keys=fg.key_columns if merge else None,
            metadata={**(metadata or {}), "operation": "insert", "validation": status},
        )
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
    """Add offline commit ``version`` to the group's history in the catalog (completing what
    :func:`reconcile` may have recovered of it meanwhile), then fill any hole left before it."""
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
    reconcile(fg, latest=version)


# Delta operations of fti's own writes, by the name the catalog gives them
_OPERATIONS = {"WRITE": "insert", "MERGE": "insert", "ADD COLUMN": "append_features"}


def reconcile(fg: FeatureGroup, latest: int | None = None) -> int:
    """Record the commits of the group's offline table that the catalog lacks; returns how many.

    A writer that dies between its Delta commit and the catalog record leaves such a hole. They
    are recovered from the Delta log: version, time, operation, rows (from the commit's metrics)
    and the validation outcome the writer attached to the commit (``unknown`` without it); the
    validation report and statistics are not in the log (``statistics(v)`` computes them on
    demand). Cheap when nothing is missing: one catalog query besides reading the table's version.
    (:meth:`FeatureGroup.reconcile` also restores a schema its first writer did not store.)
    """
    offline = fg.project.backends.offline
    catalog = fg.project.backends.catalog
    if latest is None:
        latest = offline.version(fg.table_name)
    if latest is None:
        return 0
    count, newest = records.commit_extent(catalog, fg.id)
    if count >= latest + 1 and newest is not None and newest >= latest:
        return 0  # Delta versions are 0..latest, each recorded once: nothing is missing
    known = {c.version for c in records.list_commits(catalog, fg.id)}
    added = 0
    for commit in offline.history(fg.table_name):
        if commit.version in known or commit.version > latest:
            continue
        operation = commit.metadata.get("operation") or _OPERATIONS.get(
            commit.operation, commit.operation.lower()
        )
        added += records.record_commit(
            catalog,
            fg.id,
            delta_version=commit.version,
            committed_at=commit.timestamp,
            operation=operation[:32],
            rows=commit.rows or 0,
            status=commit.metadata.get("validation", "unknown")[:16],
            recovered=True,
        )
    return added


def materialize(fg: FeatureGroup) -> int:
    """Bring the online store up to the latest offline commit; returns rows written (0 when the
    group is offline-only or already up to date)."""
    if not fg.online_enabled:
        return 0
    offline = fg.project.backends.offline
    online = fg.project.backends.online
    version = offline.version(fg.table_name)
    applied = online.applied_version(fg.table_name)
    if version is None or applied == version:
        embeddings.catch_up(fg)  # the index may lag alone (a crash between the two writes)
        return 0
    if any(
        c.metadata.get("operation") == DELETE
        for c in offline.history(fg.table_name)
        if applied is None or c.version > applied
    ):  # rows were deleted since: the online rows of their keys must go too
        written = rebuild_online(fg, version)
    else:
        latest = ingestion.latest_per_key(
            offline.dataset(fg.table_name, version=version), fg.primary_key, fg.event_time
        )
        written = online.write(
            fg.table_name, latest, key_columns=fg.primary_key, event_time=fg.event_time, version=version
        )
    embeddings.catch_up(fg)
    return written


DELETE = "delete_records"
"""The operation of a commit that deleted rows (``fg.delete_records``)."""


def rebuild_online(fg: FeatureGroup, version: int) -> int:
    """Replace the group's online table by the latest row per key of offline ``version`` (after
    rows were deleted); returns rows written. Lookups miss while it is rebuilt; a crash midway
    leaves no applied version, so the next ``materialize`` rebuilds it again."""
    online = fg.project.backends.online
    latest = ingestion.latest_per_key(
        fg.project.backends.offline.dataset(fg.table_name, version=version), fg.primary_key, fg.event_time
    )
    online.delete_table(fg.table_name)
    return online.write(
        fg.table_name, latest, key_columns=fg.primary_key, event_time=fg.event_time, version=version
    )
