"""A window of monitored data, summarized incrementally against the reference's grid.

A monitor reads its window as a stream of Arrow batches and keeps, per column, only what the drift
tests and data-quality checks need, so memory does not grow with the window:

- numeric columns: count, nulls, min, max, sum, sum of squares, and per bin of the reference's
  edges (:class:`~fti.monitoring.profiles.ColumnProfile`) the count and sum of the values, and
  the count equal to each edge. The first :data:`~fti.monitoring.profiles.EXACT_LIMIT` values are
  kept as well (dropped once there are more), so small windows are compared exactly;
- categorical columns: the count of each category (at most :data:`MAX_TRACKED` distinct ones;
  further new categories are counted together).

Per batch and numeric column that is one sort, a running sum and two binary searches per edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fti.monitoring.profiles import EXACT_LIMIT, ColumnProfile

if TYPE_CHECKING:
    import pyarrow as pa

MAX_TRACKED = 10_000
"""Most distinct categories a window tracks per column."""
OVERFLOW = "__other__"
"""The category that collects new categories beyond :data:`MAX_TRACKED`."""


class NumericSummary:
    """One numeric column of a window on the reference's edges."""

    kind = "numeric"

    def __init__(self, reference: ColumnProfile) -> None:
        assert reference.edges is not None
        self.reference = reference
        self.edges = reference.edges
        size = len(self.edges) + 1
        self.count = 0
        self.nulls = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.minimum = np.inf
        self.maximum = -np.inf
        self.bins = np.zeros(size, dtype=np.int64)
        self.sums = np.zeros(size, dtype=np.float64)
        self.at_edges = np.zeros(len(self.edges), dtype=np.int64)
        self.outside = 0
        self._low = reference.minimum if reference.minimum is not None else -np.inf
        self._high = reference.maximum if reference.maximum is not None else np.inf
        self._values: list[np.ndarray] | None = []

    def update(self, array: pa.Array | pa.ChunkedArray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pc.cast(array, pa.float64()).drop_null().to_numpy()
        if np.isnan(values).any():
            values = values[~np.isnan(values)]
        self.nulls += len(array) - len(values)
        if not len(values):
            return
        # Sorting the batch once turns binning into binary searches of the ~1,000 edges in it
        # (instead of one search per value): counts at and below each edge, and with a running
        # sum each bin's sum; about twice as fast as searchsorted + bincount per value.
        ordered = np.sort(values)
        n = len(ordered)
        running = np.cumsum(ordered)
        below = np.searchsorted(ordered, self.edges, side="right")  # values <= each edge
        under = np.searchsorted(ordered, self.edges, side="left")  # values < each edge
        upto = np.append(below, n)
        self.bins += np.diff(upto, prepend=0)
        sums_upto = np.where(upto > 0, running[np.maximum(upto - 1, 0)], 0.0)
        self.sums += np.diff(sums_upto, prepend=0.0)
        self.at_edges += below - under
        self.count += n
        self.total += float(running[-1])
        self.total_sq += float(np.square(values).sum())  # not np.dot: BLAS threads cost more than the sum
        self.minimum = min(self.minimum, float(ordered[0]))
        self.maximum = max(self.maximum, float(ordered[-1]))
        self.outside += int(np.searchsorted(ordered, self._low, side="left"))
        self.outside += n - int(np.searchsorted(ordered, self._high, side="right"))
        if self._values is not None:
            self._values.append(values)
            if self.count > EXACT_LIMIT:
                self._values = None

    @property
    def values(self) -> np.ndarray | None:
        """The window's values when it has at most :data:`EXACT_LIMIT`, else None."""
        if self._values is None:
            return None
        return np.concatenate(self._values) if self._values else np.empty(0)

    @property
    def rows(self) -> int:
        return self.count + self.nulls

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def std(self) -> float | None:
        if not self.count:
            return None
        mean = self.total / self.count
        return float(np.sqrt(max(self.total_sq / self.count - mean * mean, 0.0)))

    def out_of_range(self) -> int:
        """Values below the reference's minimum or above its maximum."""
        return self.outside


class CategoricalSummary:
    """One categorical column of a window: counts per category."""

    kind = "categorical"

    def __init__(self, reference: ColumnProfile) -> None:
        self.reference = reference
        self.counts: dict[Any, int] = {}
        self.count = 0
        self.nulls = 0

    def update(self, array: pa.Array | pa.ChunkedArray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_floating(array.type):  # NaN counts as missing, as in the reference
            array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
        self.nulls += array.null_count
        self.count += len(array) - array.null_count
        if len(array) == array.null_count:
            return
        pairs = pc.value_counts(array.drop_null())
        counts = self.counts
        for value, n in zip(
            pairs.field("values").to_pylist(), pairs.field("counts").to_pylist(), strict=True
        ):
            if value in counts or len(counts) < MAX_TRACKED:
                counts[value] = counts.get(value, 0) + int(n)
            else:
                counts[OVERFLOW] = counts.get(OVERFLOW, 0) + int(n)

    @property
    def rows(self) -> int:
        return self.count + self.nulls

    def unseen(self) -> int:
        """Values of categories the reference does not have."""
        known = self.reference.categories
        return sum(n for value, n in self.counts.items() if value not in known)


Summary = NumericSummary | CategoricalSummary


class WindowSummary:
    """Every monitored column of a window, fed batch by batch."""

    def __init__(
        self, references: Mapping[str, ColumnProfile], sources: Mapping[str, str] | None = None
    ) -> None:
        """``sources`` maps a profile's column name to its name in the batches (aliases)."""
        self.columns: dict[str, Summary] = {
            name: NumericSummary(ref) if ref.kind == "numeric" else CategoricalSummary(ref)
            for name, ref in references.items()
        }
        self._sources = dict(sources or {})
        self.rows = 0

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.rows += batch.num_rows
        for name, summary in self.columns.items():
            summary.update(batch.column(self._sources.get(name, name)))
