"""Point-in-time lookups of one joined group's rows by a single key column, in numpy.

:class:`AsOfIndex` answers, for a batch of spine rows, *which row of the group* the view's
point-in-time join (:mod:`fti.features.pit`) gives each of them: the latest row with the same key
and an event time at or before the spine row's (any time when the spine has none; the one row
per key when the group has none), or none. It exists for factorized scoring
(:mod:`fti.features.factorized`), which joins one scalar per group row: looking rows up batch by
batch streams the spine instead of sorting all of it in a query engine first, and needs no
second copy of it.

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
