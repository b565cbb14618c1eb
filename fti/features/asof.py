"""Point-in-time lookups of one joined group's rows, in numpy.

:class:`AsOfIndex` answers, for a batch of spine rows, *which row of the group* the view's
point-in-time join (:mod:`fti.features.pit`) gives each of them: the latest row with the same key
and an event time at or before the spine row's (any time when the spine has none; the one row
per key when the group has none), or none. :class:`JoinKey` makes one such key of several
columns, and :class:`PartLookup` adds a query part's ``max_age`` and join type. Looking rows up
batch by batch streams the spine instead of sorting all of it in a query engine first: the
streamed join of the wide rows (:mod:`fti.features.lookup_join`) and factorized scoring
(:mod:`fti.features.factorized`, which joins one scalar per group row) are built on it.

How: the group's keys are numbered (``pyarrow.compute.index_in`` over its distinct keys) and its
event times ranked among its distinct event times, so ``(key, time)`` becomes one sortable
integer; a spine row's integer uses the rank of the last group time at or before its own, and one
``searchsorted`` finds the row, which matches when its key number is the spine row's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

NO_ROW = -1
"""The row index of a spine row the group has no row for."""


def micros(column: Any) -> np.ndarray:
    """Event times (an Arrow timestamp column) as int64 microseconds since the epoch (UTC);
    nulls become the smallest int64."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(column.type) and column.type.unit != "us":
        column = pc.cast(column, pa.timestamp("us", tz=column.type.tz))
    values = pc.fill_null(pc.cast(column, pa.int64()), np.iinfo(np.int64).min)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)


class AsOfIndex:
    """One group's rows, indexed by ``(key, event time)`` for :meth:`rows`.

    Args:
        keys: The group's join column (an Arrow array); rows with a null key match nothing.
        times: Its event times in microseconds (see :func:`micros`), or None for a group
            without event time (one row per key).
        max_table: The largest lookup table (slots) to build: one slot per (key, distinct event
            time) answers a lookup with one gather, else a binary search (default: 8 slots per
            group row plus 1M; 0 always searches).
    """

    def __init__(
        self, keys: pa.ChunkedArray | pa.Array, times: np.ndarray | None, max_table: int | None = None
    ) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.key_type = keys.type
        self.distinct = pc.unique(pc.drop_null(keys))
        limit = 8 * len(keys) + (1 << 20) if max_table is None else max_table
        self._key_table: tuple[int, np.ndarray] | None = None
        if pa.types.is_integer(self.key_type) and len(self.distinct):
            # integer keys in a compact range are numbered by indexing, not hashing
            values = np.asarray(self.distinct.to_numpy(zero_copy_only=False), dtype=np.int64)
            low, high = int(values.min()), int(values.max())
            if high - low < limit:
                table = np.full(high - low + 1, -1, dtype=np.int64)
                table[values - low] = np.arange(len(values))
                self._key_table = (low, table)
        codes = self._codes(keys)
        rows = np.flatnonzero(codes >= 0)
        codes = codes[rows]
        self.times = times
        if times is None:
            self._moments = np.zeros(1, dtype=np.int64)
            ranks = np.zeros(len(rows), dtype=np.int64)
        else:
            self._moments = np.unique(times[rows])
            ranks = np.searchsorted(self._moments, times[rows], side="left")
        self._width = len(self._moments) + 1
        combined = codes * self._width + ranks
        order = np.argsort(combined, kind="stable")
        self._sorted = combined[order]
        self._rows = rows[order]
        self._codes_sorted = codes[order]
        self._dense: np.ndarray | None = None
        slots = len(self.distinct) * self._width
        if len(rows) and slots < limit:
            # every (key, rank) slot holds the row at or before it: one gather per lookup
            filled = np.full(slots, -1, dtype=np.int64)
            filled[self._sorted] = np.arange(len(self._sorted))
            last = np.maximum.accumulate(np.where(filled >= 0, np.arange(slots), -1))
            same_key = (last >= 0) & (last // self._width == np.arange(slots) // self._width)
            self._dense = np.where(same_key, self._rows[filled[np.maximum(last, 0)]], NO_ROW)

    def _codes(self, keys: Any) -> np.ndarray:
        import pyarrow.compute as pc

        if keys.type != self.key_type:
            keys = pc.cast(keys, self.key_type)
        if self._key_table is not None:
            low, table = self._key_table
            nulls = np.asarray(pc.is_null(keys).to_numpy(zero_copy_only=False), dtype=bool)
            values = np.asarray(pc.fill_null(keys, low).to_numpy(zero_copy_only=False), dtype=np.int64)
            offsets = values - low
            inside = (offsets >= 0) & (offsets < len(table)) & ~nulls
            return np.where(inside, table[np.where(inside, offsets, 0)], -1)
        found = pc.index_in(keys, value_set=self.distinct)
        return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)

    def rows(self, keys: Any, times: np.ndarray | None) -> np.ndarray:
        """For each spine row (its join key and event time in microseconds, or None for a spine
        without event time: the latest row), the group row the point-in-time join picks, or
        :data:`NO_ROW`."""
        codes = self._codes(keys)
        if not len(self._sorted):  # a group without rows
            return np.full(len(codes), NO_ROW, dtype=np.int64)
        if times is None or self.times is None:
            latest = len(self._moments) - 1 if self.times is not None else 0
            ranks = np.full(len(codes), latest, dtype=np.int64)
        else:
            ranks = np.searchsorted(self._moments, times, side="right") - 1  # -1: before every row
        wanted = codes * self._width + ranks
        if self._dense is not None:
            valid = (codes >= 0) & (ranks >= 0)
            return np.where(valid, self._dense[np.where(valid, wanted, 0)], NO_ROW)
        at = np.searchsorted(self._sorted, wanted, side="right") - 1
        found = (codes >= 0) & (ranks >= 0) & (at >= 0)
        at = np.where(found, at, 0)
        found &= self._codes_sorted[at] == codes
        return np.where(found, self._rows[at], NO_ROW)


class JoinKey:
    """A composite join key (several columns) as one int64 code per row, for :class:`AsOfIndex`.

    Each key column's values are numbered among the group's distinct values of that column, and
    the numbers are combined column by column, renumbering the pairs among those the group holds
    after each step, so a code stays below the group's row count times one column's distinct
    count (no overflow however many columns). A row whose value in some column is null, or is not
    one of the group's, gets no code (null): it matches nothing, as in SQL.

    Args:
        columns: The group's key columns (Arrow arrays of equal length), in the order of the join.
    """

    def __init__(self, columns: list[Any]) -> None:
        import pyarrow.compute as pc

        self._distinct = [pc.unique(pc.drop_null(_widened(column))) for column in columns]
        self._pairs: list[np.ndarray] = []
        code = self._column(0, columns[0])
        for i in range(1, len(columns)):
            combined = self._combine(code, self._column(i, columns[i]), len(self._distinct[i]))
            pairs = np.unique(combined[combined >= 0])
            self._pairs.append(pairs)
            code = np.where(combined >= 0, np.searchsorted(pairs, combined), NO_ROW)
        self.codes = _nullable(code)
        """The group rows' codes (pass them to :class:`AsOfIndex`)."""

    def encode(self, columns: list[Any]) -> pa.Array:
        """The codes of other rows' key columns (a spine batch's): null where the group has no
        row with those values."""
        code = self._column(0, columns[0])
        for i in range(1, len(columns)):
            combined = self._combine(code, self._column(i, columns[i]), len(self._distinct[i]))
            pairs = self._pairs[i - 1]
            if not len(pairs):
                return _nullable(np.full(len(combined), NO_ROW, dtype=np.int64))
            at = np.minimum(np.searchsorted(pairs, combined), len(pairs) - 1)
            code = np.where((combined >= 0) & (pairs[at] == combined), at, NO_ROW)
        return _nullable(code)

    def _column(self, i: int, column: Any) -> np.ndarray:
        import pyarrow.compute as pc

        column = _widened(column)
        if column.type != self._distinct[i].type:
            column = pc.cast(column, self._distinct[i].type)
        found = pc.index_in(column, value_set=self._distinct[i])
        return np.asarray(pc.fill_null(found, NO_ROW).to_numpy(zero_copy_only=False), dtype=np.int64)

    @staticmethod
    def _combine(code: np.ndarray, column: np.ndarray, width: int) -> np.ndarray:
        return np.where((code >= 0) & (column >= 0), code * width + column, NO_ROW)


def _widened(column: Any) -> Any:
    """Integer keys as int64: a join may compare int32 with int64 values (as SQL would)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(column, pa.int64()) if pa.types.is_integer(column.type) else column


def _nullable(code: np.ndarray) -> pa.Array:
    import pyarrow as pa

    return pa.array(code, mask=code < 0)


class PartLookup:
    """Which row of one joined group the view's point-in-time join gives each spine row.

    The one place that states the join's rules outside SQL (:func:`fti.features.pit.build_sql`
    is the other): the latest group row with the same key at or before the spine row's event time
    (see :class:`AsOfIndex`), whose values count only when it is at most ``max_age`` older; an
    inner join drops spine rows without a row. Used by the streamed join of the wide rows
    (:mod:`fti.features.lookup_join`) and by factorized scoring (:mod:`fti.features.factorized`).

    Args:
        part: The query part (a joined group).
        rows: The group's rows, holding at least its join columns and event time.
        spine_time: The spine's event-time column, or None.
    """

    def __init__(self, part: Any, rows: pa.Table, spine_time: str | None) -> None:
        from datetime import timedelta

        self.part = part
        group_time = part.group.event_time
        self.times = None if group_time is None else micros(rows.column(group_time))
        self._limit = (
            None if part.max_age is None or spine_time is None else part.max_age // timedelta(microseconds=1)
        )
        self._key = None if len(part.on) == 1 else JoinKey([rows.column(k) for k in part.on])
        keys = _widened(rows.column(part.on[0])) if self._key is None else self._key.codes
        self._index = AsOfIndex(keys, self.times)

    def pick(self, batch: Any, moments: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the rows of a spine ``batch`` (their event times in microseconds, see :func:`micros`,
        or None): the group row picked (:data:`NO_ROW` when none), whether there is one (what an
        inner join keeps), and whether its values count (there is one, not older than ``max_age``)."""
        spine_on = self.part.spine_on
        keys = (
            _widened(batch.column(spine_on[0]))
            if self._key is None
            else self._key.encode([batch.column(c) for c in spine_on])
        )
        rows = self._index.rows(keys, moments)
        found = rows >= 0
        valid = found
        if self._limit is not None and self.times is not None and moments is not None and found.any():
            valid = found & (moments - self.times[np.where(found, rows, 0)] <= self._limit)
        return rows, found, valid
