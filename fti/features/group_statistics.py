"""A feature group's statistics at each commit: merged from the previous version's state when the
commit only added rows, recomputed over the table otherwise (issue 20).

:func:`fti.features.commit.insert` calls :func:`at_commit`; compaction and vacuum
(:mod:`fti.features.group_upkeep`) call :func:`carry`. The mergeable state and its figures are in
:mod:`fti.features.statistics_state`; the full computation is
:func:`fti.features.statistics.compute_statistics`; the catalog keeps the state of the latest
version only (:func:`fti.features.records.save_statistics_state`).

Never counting a row twice: a commit's rows are merged only into the state of the version just
before it (stored, or caught up with the rows the commits in between added when they only added
data files), and a state only replaces an older one. Whatever else happened (rows replaced or
deleted, files rewritten, a schema change, no state) recomputes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fti.features import records

if TYPE_CHECKING:
    from concurrent.futures import Future

    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup
    from fti.features.statistics_state import TableState


FIRST_STATE_MAX_ROWS = 100_000
"""A first insert of more rows stores no state: building one costs about 4x the figures (the HLL
sketch takes one value per call: 2.9 s against 0.75 s at 2M rows), which a group loaded once and
never appended to would pay for nothing. The first append that can merge then builds it."""


AHEAD_MIN_ROWS = 100_000
"""A first insert of at least this many rows computes its statistics beside the Delta write."""


def ahead(fg: FeatureGroup, table: pa.Table) -> Future[tuple[bytes | None, dict[str, Any]]] | None:
    """Start computing, in a thread of its own, what :func:`at_commit` needs when the commit of
    ``table`` is to create the group's table (its state and statistics depend on ``table``
    alone), so that they overlap the Delta write: DuckDB, numpy and delta-rs release the GIL
    (a first insert of 2M rows: 1.43 s against 1.0 s on two cores). None when the table exists.
    If another writer creates the table first, :func:`at_commit` ignores the result. Smaller
    inserts (appends, streams, logs) gain nothing from the overlap and skip the table check it
    needs (a Delta log read, a round trip on S3)."""
    if table.num_rows < AHEAD_MIN_ROWS or fg.project.backends.offline.version(fg.table_name) is not None:
        return None
    from concurrent.futures import ThreadPoolExecutor

    executor = ThreadPoolExecutor(1, thread_name_prefix="fti-statistics")
    try:
        return executor.submit(_of_first, table)
    finally:
        executor.shutdown(wait=False)  # the thread ends with its one task


def _of_first(table: pa.Table) -> tuple[bytes | None, dict[str, Any]]:
    """The stored state (see :data:`FIRST_STATE_MAX_ROWS`) and the statistics of a table created
    from ``table``."""
    from fti.features.statistics import compute_statistics  # DuckDB and sketches: only when needed
    from fti.features.statistics_state import TableState

    state = TableState.of(table).to_bytes() if table.num_rows <= FIRST_STATE_MAX_ROWS else None
    return state, compute_statistics(table)


def at_commit(
    fg: FeatureGroup,
    table: pa.Table,
    version: int,
    *,
    merged: bool,
    early: Future[tuple[bytes | None, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The group's statistics at ``version``, which this writer's commit of ``table`` created
    (``merged``: as a Delta merge on the key columns, else as an append); ``early`` is what
    :func:`ahead` started before the commit.

    When the commit only added ``table``'s rows (an append, the first commit, an upsert that
    replaced no row) and the state of ``version - 1`` is known (:func:`_state_before`), the state
    of ``table`` is merged into it: the cost is that of the insert, not of the table. Otherwise
    the statistics are recomputed over the whole table; a fresh state is then built only when
    this commit added rows, so that the next append can merge (a group whose commits replace
    rows does not pay for states it cannot use; see also :data:`FIRST_STATE_MAX_ROWS`).
    """
    from fti.features.statistics import compute_statistics  # DuckDB and sketches: only when needed
    from fti.features.statistics_state import TableState

    offline = fg.project.backends.offline
    catalog = fg.project.backends.catalog
    if version == 0:  # the table was created from exactly this insert: no need to read it back
        state, statistics = early.result() if early is not None else _of_first(table)
        if state is not None:
            records.save_statistics_state(catalog, fg.id, version, state)
        return statistics
    if not only_added(fg, version, merged=merged):
        return compute_statistics(offline.dataset(fg.table_name, version=version))
    previous = _state_before(fg, version)
    if previous is not None and previous.matches(table.schema):
        previous.merge(TableState.of(table))
        records.save_statistics_state(catalog, fg.id, version, previous.to_bytes())
        return previous.statistics()
    dataset = offline.dataset(fg.table_name, version=version)
    records.save_statistics_state(catalog, fg.id, version, TableState.of(dataset).to_bytes())
    return compute_statistics(dataset)


def _state_before(fg: FeatureGroup, version: int) -> TableState | None:
    """The statistics state of ``version - 1``: the stored one, or the stored state of an older
    version caught up with the rows the commits since then added when they only added data (a
    Spark insert, ``insert_stream``, ``statistics=False``, a writer that died before storing its
    state, another writer still finishing its commit); None when neither exists."""
    from fti.features.statistics_state import TableState

    stored = records.statistics_state(fg.project.backends.catalog, fg.id)
    if stored is None or stored[0] >= version:
        return None
    state = TableState.from_bytes(stored[1])
    if state is None or stored[0] == version - 1:
        return state
    added = fg.project.backends.offline.added_rows(fg.table_name, stored[0], version - 1)
    if added is None or not state.matches(added.schema):
        return None
    state.merge(TableState.of(added))
    return state


def only_added(fg: FeatureGroup, version: int, *, merged: bool) -> bool:
    """Whether this writer's commit ``version`` only added its rows to the previous version: an
    append always does; a merge when its metrics say it replaced no row."""
    if not merged:
        return True
    commits = fg.project.backends.offline.history(fg.table_name, since=version)
    mine = next((c for c in commits if c.version == version), None)
    return mine is not None and mine.rows_removed == 0


def carry(fg: FeatureGroup, previous: int, version: int) -> dict[str, Any] | None:
    """After commits ``previous + 1 .. version`` that changed no row (a compaction, a vacuum),
    make the stored state of ``previous`` that of ``version``; returns the statistics stored with
    ``previous`` (None when not stored), which are those of ``version`` too. Nothing is carried
    when another writer's commit changed rows in between."""
    catalog = fg.project.backends.catalog
    between = fg.project.backends.offline.history(fg.table_name, since=previous + 1)
    if any(c.rows_removed != 0 or c.rows for c in between if c.version <= version):
        return None
    records.advance_statistics_state(catalog, fg.id, previous, version)
    found = records.commit_statistics(catalog, fg.id, previous)
    return None if found is None else found[1]
