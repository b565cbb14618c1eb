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
    """

    def __init__(self, keys: pa.ChunkedArray | pa.Array, times: np.ndarray | None) -> None:
        import pyarrow.compute as pc

        self.key_type = keys.type
        self.distinct = pc.unique(pc.drop_null(keys))
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

    def _codes(self, keys: Any) -> np.ndarray:
        import pyarrow.compute as pc

        if keys.type != self.key_type:
            keys = pc.cast(keys, self.key_type)
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
        at = np.searchsorted(self._sorted, wanted, side="right") - 1
        found = (codes >= 0) & (ranks >= 0) & (at >= 0)
        at = np.where(found, at, 0)
        found &= self._codes_sorted[at] == codes
        return np.where(found, self._rows[at], NO_ROW)
