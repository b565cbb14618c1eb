"""Reference profiles: what a monitor compares every window with, computed once and stored.

A :class:`Profile` summarizes reference data (the train split of a model's training dataset, or a
window of the monitored data) column by column, so a monitor run never reads the reference again:

- **numeric** columns (more than :data:`SMALL_DISTINCT` distinct values): count, nulls, min, max,
  mean, population std, :data:`QUANTILES` + 1 quantiles, and the reference's distribution over a
  grid of **edges** (its distinct values when it has at most :data:`EXACT_LIMIT` of them, else its
  quantiles): the share of values in each bin ``(-inf, e0], (e0, e1], ..., (e_last, inf)``, the
  share equal to each edge and each bin's mean. Up to :data:`EXACT_LIMIT` values, the sorted
  values themselves are kept too, so the statistics of small references are exact;
- **categorical** columns (strings, booleans and numbers with few distinct values): the count of
  each of the :data:`MAX_CATEGORIES` most frequent categories (the rest summed as ``other``).

Profiles are built from a stream of Arrow batches (:class:`ProfileBuilder`); beyond
:data:`SAMPLE_LIMIT` values a numeric column's quantiles come from a uniform random sample of
that size (fixed seed), while counts, nulls, min, max, mean and std stay exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from fti.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

QUANTILES = 1000
"""Quantile levels of a numeric reference (the grid of large references has this many bins)."""
EXACT_LIMIT = 10_000
"""A sample this small is kept value by value (references and windows): its statistics are exact."""
SAMPLE_LIMIT = 1_000_000
"""Most values a reference column keeps to compute its quantiles (a uniform sample beyond)."""
MAX_CATEGORIES = 1_000
"""Most categories a profile keeps per column (the most frequent; the others are summed)."""
SMALL_DISTINCT = 5
"""Numeric columns with at most this many distinct values are compared as categories."""
NUMERIC_DTYPES = ("int8", "int16", "int32", "int64", "float32", "float64")
CATEGORICAL_DTYPES = ("string", "bool")
ROLES = ("feature", "prediction")


@dataclass(frozen=True)
class ColumnProfile:
    """The reference distribution of one column (see the module docs)."""

    name: str
    kind: str
    """``"numeric"`` or ``"categorical"``."""
    dtype: str
    role: str
    """``"feature"`` or ``"prediction"``."""
    count: int
    """Non-null values."""
    nulls: int
    distinct: int
    """Distinct non-null values (of the sample for numeric columns beyond :data:`SAMPLE_LIMIT`)."""
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: np.ndarray | None = field(default=None, compare=False, repr=False)
    edges: np.ndarray | None = field(default=None, compare=False, repr=False)
    bins: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Share of the values in each bin; ``len(edges) + 1`` entries."""
    at_edges: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Share of the values equal to each edge."""
    bin_means: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Mean of the values in each bin (the edge itself for an empty bin)."""
    values: np.ndarray | None = field(default=None, compare=False, repr=False)
    """The sorted values, when there are at most :data:`EXACT_LIMIT`."""
    categories: dict[Any, int] = field(default_factory=dict)
    """Category -> count (categorical columns), most frequent first."""
    other: int = 0
    """Values of the categories beyond :data:`MAX_CATEGORIES` (unseen-category checks then skip)."""
    aliases: tuple[str, ...] = ()
    """Other names of the column in monitored data (batch predictions name ``predict`` ``prediction``)."""

    @property
    def rows(self) -> int:
        return self.count + self.nulls

    @property
    def null_share(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    def deciles(self) -> np.ndarray:
        """The edges at the reference's deciles (PSI and Jensen-Shannon bins of numeric columns)."""
        assert self.quantiles is not None
        step = (len(self.quantiles) - 1) // 10
        return np.unique(self.quantiles[step : len(self.quantiles) - 1 : step][:9])

    def to_dict(self) -> dict[str, Any]:
        def floats(a: np.ndarray | None) -> list[float] | None:
            return None if a is None else [float(v) for v in a]

        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "role": self.role,
            "count": self.count,
            "nulls": self.nulls,
            "distinct": self.distinct,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "quantiles": floats(self.quantiles),
            "edges": floats(self.edges),
            "bins": floats(self.bins),
            "at_edges": floats(self.at_edges),
            "bin_means": floats(self.bin_means),
            "values": floats(self.values),
            "categories": [[k, v] for k, v in self.categories.items()],
            "other": self.other,
            "aliases": list(self.aliases),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        def array(name: str) -> np.ndarray | None:
            value = data.get(name)
            return None if value is None else np.asarray(value, dtype=np.float64)

        return cls(
            name=data["name"],
            kind=data["kind"],
            dtype=data["dtype"],
            role=data["role"],
            count=int(data["count"]),
            nulls=int(data["nulls"]),
            distinct=int(data["distinct"]),
            minimum=data.get("min"),
            maximum=data.get("max"),
            mean=data.get("mean"),
            std=data.get("std"),
            quantiles=array("quantiles"),
            edges=array("edges"),
            bins=array("bins"),
            at_edges=array("at_edges"),
            bin_means=array("bin_means"),
            values=array("values"),
            categories={_key(k): int(v) for k, v in data.get("categories") or []},
            other=int(data.get("other", 0)),
            aliases=tuple(data.get("aliases") or ()),
        )


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Profile:
    """The reference of a monitor: one :class:`ColumnProfile` per monitored column, where the
    data came from, and (for a classifier's training-dataset reference) what CBPE needs."""

    columns: dict[str, ColumnProfile]
    rows: int
    source: dict[str, Any]
    """Where the reference came from, e.g. ``{"kind": "training_dataset", "feature_view": "fraud",
    "feature_view_version": 1, "training_dataset_version": 2, "split": "train"}``."""
    created_at: datetime
    model: dict[str, Any] | None = None
    """The model the predictions were profiled with: name, version, task, classes, the
    calibration of its scores on the test split and its realized metrics there."""

    def column(self, name: str) -> ColumnProfile:
        found = self.columns.get(name)
        if found is None:
            raise ValidationError(f"the reference has no column {name!r}; it has {sorted(self.columns)}")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [c.to_dict() for c in self.columns.values()],
            "rows": self.rows,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        columns = [ColumnProfile.from_dict(c) for c in data["columns"]]
        return cls(
            columns={c.name: c for c in columns},
            rows=int(data["rows"]),
            source=dict(data["source"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            model=data.get("model"),
        )


class _Column:
    """Accumulates one column of the reference stream."""

    def __init__(self, name: str, dtype: str, role: str, aliases: tuple[str, ...], seed: int) -> None:
        self.name = name
        self.dtype = dtype
        self.role = role
        self.aliases = aliases
        self.numeric = dtype in NUMERIC_DTYPES
        self.count = 0
        self.nulls = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.minimum = np.inf
        self.maximum = -np.inf
        self.sample = np.empty(0, dtype=np.float64)
        self.priorities = np.empty(0, dtype=np.float64)
        self.rng = np.random.default_rng(seed)
        # category counts (every categorical column; numeric ones while they have few values)
        self.counts: dict[Any, int] | None = {}

    def update(self, array: pa.Array | pa.ChunkedArray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if self.numeric:
            values = pc.cast(array, pa.float64()).drop_null().to_numpy()
            finite = values[~np.isnan(values)]
            self.nulls += len(array) - len(finite)
            self._numbers(finite)
            if self.counts is not None:
                self._count(pa.array(finite) if len(finite) != len(array) else array.drop_null())
        else:
            self.nulls += array.null_count
            self.count += len(array) - array.null_count
            self._count(array.drop_null())

    def _numbers(self, values: np.ndarray) -> None:
        if not len(values):
            return
        self.count += len(values)
        self.total += float(values.sum())
        self.total_sq += float(np.square(values).sum())
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))
        # a uniform sample without replacement: the values with the smallest random priorities
        priorities = self.rng.random(len(values))
        sample = np.concatenate([self.sample, values])
        keys = np.concatenate([self.priorities, priorities])
        if len(sample) > SAMPLE_LIMIT:
            keep = np.argpartition(keys, SAMPLE_LIMIT)[:SAMPLE_LIMIT]
            sample, keys = sample[keep], keys[keep]
        self.sample, self.priorities = sample, keys

    def _count(self, array: pa.Array) -> None:
        import pyarrow.compute as pc

        if self.counts is None or not len(array):
            return
        pairs = pc.value_counts(array)
        for value, count in zip(
            pairs.field("values").to_pylist(), pairs.field("counts").to_pylist(), strict=True
        ):
            self.counts[value] = self.counts.get(value, 0) + int(count)
        if self.numeric and len(self.counts) > SMALL_DISTINCT:
            self.counts = None  # a real numeric column: compared by its distribution

    def finish(self) -> ColumnProfile:
        if self.numeric and self.counts is None:
            return self._numeric()
        counts = dict(sorted((self.counts or {}).items(), key=lambda kv: (-kv[1], str(kv[0]))))
        kept = dict(list(counts.items())[:MAX_CATEGORIES])
        return ColumnProfile(
            name=self.name,
            kind="categorical",
            dtype=self.dtype,
            role=self.role,
            count=self.count,
            nulls=self.nulls,
            distinct=len(counts),
            categories=kept,
            other=sum(counts.values()) - sum(kept.values()),
            aliases=self.aliases,
        )

    def _numeric(self) -> ColumnProfile:
        sample = np.sort(self.sample)
        n = self.count
        mean = self.total / n
        std = float(np.sqrt(max(self.total_sq / n - mean * mean, 0.0)))
        quantiles = np.quantile(sample, np.arange(QUANTILES + 1) / QUANTILES, method="inverted_cdf")
        exact = n <= EXACT_LIMIT
        edges = np.unique(sample) if exact else np.unique(quantiles)
        index = np.searchsorted(edges, sample, side="left")
        bins = np.bincount(index, minlength=len(edges) + 1).astype(np.float64)
        sums = np.bincount(index, weights=sample, minlength=len(edges) + 1)
        inside = index < len(edges)
        at_edges = np.bincount(
            index[inside][sample[inside] == edges[index[inside]]], minlength=len(edges)
        ).astype(np.float64)
        padded = np.append(edges, edges[-1])
        means = np.divide(sums, bins, out=padded.copy(), where=bins > 0)
        return ColumnProfile(
            name=self.name,
            kind="numeric",
            dtype=self.dtype,
            role=self.role,
            count=n,
            nulls=self.nulls,
            distinct=len(np.unique(sample)),
            minimum=self.minimum,
            maximum=self.maximum,
            mean=mean,
            std=std,
            quantiles=quantiles,
            edges=edges,
            bins=bins / len(sample),
            at_edges=at_edges / len(sample),
            bin_means=means,
            values=sample if exact else None,
            aliases=self.aliases,
        )


class ProfileBuilder:
    """Builds a :class:`Profile` from a stream of Arrow batches holding the given columns.

    Args:
        columns: ``{name: (fti dtype, role)}`` of the columns to profile; numeric, string or bool.
        aliases: Other names of a column in the monitored data.
        seed: Seed of the sampling of large numeric columns.
    """

    def __init__(
        self,
        columns: Mapping[str, tuple[str, str]],
        aliases: Mapping[str, tuple[str, ...]] | None = None,
        seed: int = 0,
    ) -> None:
        check_dtypes({name: dtype for name, (dtype, _) in columns.items()})
        self._columns = {
            name: _Column(name, dtype, role, tuple((aliases or {}).get(name, ())), seed + i)
            for i, (name, (dtype, role)) in enumerate(columns.items())
        }
        self.rows = 0

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.rows += batch.num_rows
        for name, column in self._columns.items():
            column.update(batch.column(name))

    def update_all(self, batches: Iterable[pa.RecordBatch | pa.Table]) -> ProfileBuilder:
        for batch in batches:
            self.update(batch)
        return self

    def finish(self, source: dict[str, Any], model: dict[str, Any] | None = None) -> Profile:
        if not self.rows:
            raise ValidationError(
                f"the reference ({_describe(source)}) has no rows: choose a reference with data"
            )
        return Profile(
            columns={name: column.finish() for name, column in self._columns.items()},
            rows=self.rows,
            source=source,
            created_at=datetime.now(UTC),
            model=model,
        )


def check_dtypes(dtypes: Mapping[str, str]) -> None:
    """Monitors compare numeric, string and bool columns; anything else is named."""
    bad = {
        name: dtype for name, dtype in dtypes.items() if dtype not in (*NUMERIC_DTYPES, *CATEGORICAL_DTYPES)
    }
    if bad:
        raise ValidationError(
            f"column(s) {bad} cannot be monitored: monitors compare numeric, string and bool columns; "
            "leave them out with features=[...]"
        )


def _describe(source: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in source.items())
