"""Incremental keyed window aggregation with event-time watermarks and allowed lateness.

The state is the set of accepted events still inside some window's reach, per key, sorted by
event time, plus the watermark (the latest event time seen). Every output row is a pure function
of that set: the row of key ``k`` at time ``r`` aggregates the events of ``k`` in ``r``'s
windows. So applying an event twice is a no-op (events are identified by their stream message
id), replaying a batch after a crash recomputes exactly the rows written before, and rows come
out equal to the batch computation of the same windows (:mod:`fti.streaming.batch`).

Which rows a batch of events emits (see :mod:`fti.window` for the row sets):

- the key's rows at times ``r`` with ``t <= r <= t + max size (+ every)`` for each applied
  event ``t`` (its own row and the later rows it changes, when it arrived late), up to the
  watermark;
- rows whose time the watermark passed in this batch (hopping window ends; sliding expiry
  rows), for every key: a heap holds each key's next such time.

An event older than ``watermark - allowed_lateness`` is dropped and reported; events older than
``watermark - allowed_lateness - max size - every`` can no longer affect any row and are evicted.
Sums use ``math.fsum`` (exactly rounded), so a row does not depend on the order events arrived in.
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fti.window import Aggregation, Window

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Event:
    """One event: its stream id, key, event time (microseconds since the epoch) and the values
    of the aggregated columns (in :attr:`Aggregator.value_columns` order)."""

    id: str
    key: Key
    t: int
    values: tuple[float, ...]


@dataclass
class Applied:
    """What one :meth:`Aggregator.apply` did."""

    rows: dict[tuple[Key, int], list[Any]] = field(default_factory=dict)
    """Output rows to (re)write: (key, time) -> the aggregate values in output-column order."""
    accepted: list[Event] = field(default_factory=list)
    late: list[Event] = field(default_factory=list)
    duplicates: int = 0
    evicted_before: int | None = None
    """Events with an earlier time were evicted (None: nothing was)."""


class _KeyState:
    __slots__ = ("columns", "entries", "ids", "times")

    def __init__(self, width: int) -> None:
        self.entries: list[tuple[int, str]] = []  # (time, id), sorted
        self.times: list[int] = []
        self.ids: list[str] = []
        self.columns: list[list[float]] = [[] for _ in range(width)]

    def insert(self, event: Event) -> None:
        position = bisect_left(self.entries, (event.t, event.id))
        self.entries.insert(position, (event.t, event.id))
        self.times.insert(position, event.t)
        self.ids.insert(position, event.id)
        for column, value in zip(self.columns, event.values, strict=True):
            column.insert(position, value)

    def evict_before(self, bound: int) -> list[str]:
        cut = bisect_left(self.times, bound)
        if not cut:
            return []
        gone = self.ids[:cut]
        del self.entries[:cut], self.times[:cut], self.ids[:cut]
        for column in self.columns:
            del column[:cut]
        return gone


class Aggregator:
    """The windows and aggregations of one stream pipeline, applied event batch by event batch."""

    def __init__(
        self, windows: Sequence[Window], aggregations: Sequence[Aggregation], *, allowed_lateness_us: int
    ) -> None:
        self.windows = tuple(windows)
        self.aggregations = tuple(aggregations)
        self.value_columns: tuple[str, ...] = tuple(
            dict.fromkeys(a.column for a in aggregations if a.column is not None)
        )
        self.output_columns = tuple(f"{a.name}_{w.name}" for w in self.windows for a in self.aggregations)
        self.sliding = self.windows[0].kind == "sliding"
        self.every = self.windows[0].every_us  # shared by all windows of a pipeline
        self.max_size = max(w.size_us for w in self.windows)
        self.lateness = allowed_lateness_us
        self.watermark: int | None = None
        self._keys: dict[Key, _KeyState] = {}
        self._seen: set[str] = set()
        self._next: dict[Key, int] = {}
        self._heap: list[tuple[int, int, Key]] = []
        self._tie = itertools.count()
        self._plan = [
            (
                w.size_us,
                [
                    (a.function, None if a.column is None else self.value_columns.index(a.column))
                    for a in self.aggregations
                ],
            )
            for w in self.windows
        ]

    # --- state ----------------------------------------------------------------------------------
    @property
    def events(self) -> int:
        return len(self._seen)

    def restore(self, events: Iterable[Event], watermark: int | None) -> None:
        """Load accepted events and the watermark from a checkpoint (no rows are emitted)."""
        for event in events:
            if event.id not in self._seen:
                self._state(event.key).insert(event)
                self._seen.add(event.id)
        self.watermark = watermark
        if watermark is not None:
            for key in self._keys:
                self._schedule(key, watermark)

    def _state(self, key: Key) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState(len(self.value_columns))
        return state

    # --- applying a batch -----------------------------------------------------------------------
    def apply(self, events: Iterable[Event]) -> Applied:
        """Apply ``events`` in order and return the rows to write (see the module docstring)."""
        out = Applied()
        old = self.watermark
        touched: dict[Key, list[int]] = {}
        for event in events:
            if event.id in self._seen:
                out.duplicates += 1
                continue
            if self.watermark is not None and event.t < self.watermark - self.lateness:
                out.late.append(event)
                continue
            self._state(event.key).insert(event)
            self._seen.add(event.id)
            out.accepted.append(event)
            touched.setdefault(event.key, []).append(event.t)
            if self.watermark is None or event.t > self.watermark:
                self.watermark = event.t
        if self.watermark is None:
            return out
        watermark = self.watermark
        # an event changes the rows up to max size after it; with every, the expiry rows up to
        # one grid step later too
        reach = self.max_size + (self.every or 0 if self.sliding else 0)
        for key, times in touched.items():
            for lo, hi in _merge(sorted(times), reach):
                for r in self._points(key, lo, min(hi, watermark)):
                    out.rows[(key, r)] = self._row(key, r)
            self._schedule(key, watermark if old is None else old)
        while self._heap and self._heap[0][0] <= watermark:
            point, _, key = heapq.heappop(self._heap)
            if self._next.get(key) != point:
                continue  # superseded
            out.rows[(key, point)] = self._row(key, point)
            self._schedule(key, point)
        out.evicted_before = self._evict(watermark)
        return out

    def _evict(self, watermark: int) -> int | None:
        bound = watermark - self.lateness - self.max_size - (self.every or 0)
        evicted = False
        for key in list(self._keys):
            state = self._keys[key]
            gone = state.evict_before(bound)
            if gone:
                evicted = True
                self._seen.difference_update(gone)
                if not state.times:
                    del self._keys[key]
                    self._next.pop(key, None)
        return bound if evicted else None

    def _schedule(self, key: Key, after: int) -> None:
        """Put the key's next watermark-driven row time after ``after`` on the heap."""
        if self.sliding and self.every is None:
            return  # sliding rows are all event times, emitted as events are applied
        point = self._next_point(key, after)
        if point is None:
            self._next.pop(key, None)
        elif self._next.get(key) != point:
            self._next[key] = point
            heapq.heappush(self._heap, (point, next(self._tie), key))

    # --- row times ------------------------------------------------------------------------------
    def _next_point(self, key: Key, after: int) -> int | None:
        state = self._keys.get(key)
        if state is None or not state.times:
            return None
        times, every = state.times, self.every
        assert every is not None
        if self.sliding:  # expiry rows: the first multiple of every after t + size
            floor = (after // every) * every
            best: int | None = None
            for size_us, _ in self._plan:
                j = bisect_left(times, floor - size_us)
                while j < len(times):
                    point = _grid_after(times[j] + size_us, every)
                    if point > after:
                        best = point if best is None else min(best, point)
                        break
                    j += 1
            return best
        first = _grid_after(after, every)  # hopping: the next window end holding an event
        j = bisect_left(times, first - self.max_size)
        if j == len(times):
            return None
        return first if times[j] < first else _grid_after(times[j], every)

    def _points(self, key: Key, lo: int, hi: int) -> list[int]:
        """The key's row times in ``[lo, hi]`` (hopping: in ``(lo, hi]``)."""
        if hi < lo:
            return []
        state = self._keys[key]
        times, every = state.times, self.every
        if self.sliding:
            points = set(times[bisect_left(times, lo) : bisect_right(times, hi)])
            if every is not None:
                floor = (lo // every) * every
                for size_us, _ in self._plan:
                    for t in times[
                        bisect_left(times, floor - size_us - every) : bisect_right(times, hi - size_us)
                    ]:
                        point = _grid_after(t + size_us, every)
                        if lo <= point <= hi:
                            points.add(point)
            return sorted(points)
        assert every is not None
        out = []
        e = _grid_after(lo, every)
        while e <= hi:
            j = bisect_left(times, e - self.max_size)
            if j < len(times) and times[j] < e:
                out.append(e)
                e += every
            elif j < len(times):
                e = max(e + every, _grid_after(times[j], every))
            else:
                break
        return out

    def _row(self, key: Key, r: int) -> list[Any]:
        state = self._keys[key]
        times, columns = state.times, state.columns
        hi = bisect_right(times, r) if self.sliding else bisect_left(times, r)
        row: list[Any] = []
        for size_us, plan in self._plan:
            lo = bisect_left(times, r - size_us)
            n = hi - lo
            for function, column in plan:
                if function == "count":
                    row.append(n)
                elif n == 0:
                    row.append(None)
                else:
                    assert column is not None
                    values = columns[column][lo:hi]
                    if function == "sum":
                        row.append(math.fsum(values))
                    elif function == "mean":
                        row.append(math.fsum(values) / n)
                    elif function == "min":
                        row.append(min(values))
                    else:
                        row.append(max(values))
        return row


def _grid_after(t: int, every: int) -> int:
    """The first multiple of ``every`` strictly after ``t``."""
    return (t // every + 1) * every


def _merge(times: list[int], span: int) -> list[tuple[int, int]]:
    """The union of ``[t, t + span]`` over sorted ``times``, as disjoint intervals."""
    out: list[tuple[int, int]] = []
    for t in times:
        if out and t <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], t + span))
        else:
            out.append((t, t + span))
    return out
