"""Mergeable statistics of a feature group's rows, so a commit that only adds rows updates the
table's statistics from the previous state and its own rows instead of scanning the table.

Per column: the row and null counts, min and max are exact; mean and the sum of squared
deviations (``m2``) merge exactly by Chan's parallel formulas (``std`` is the sample standard
deviation, as DuckDB's ``stddev_samp``); the distinct count is an HLL sketch; the histogram of a
numeric column is read from a KLL sketch at the equal-width edges of the merged min and max
(within the sketch's rank error once it summarizes, flagged ``"approximate": true``); the top
values of string and bool columns are exact counts up to :data:`EXACT_VALUES` distinct values,
then a frequent-items sketch (flagged ``"top_values_approximate": true``). Sketches are Apache
DataSketches'. The figures have the shape of :func:`fti.features.statistics.compute_statistics`.
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

from fti.features.statistics import HISTOGRAM_BINS, TOP_VALUES

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = 1
"""Version of the serialized state (an unknown one is ignored: the statistics are recomputed)."""
HLL_LG_K = 12
"""HLL precision: 4,096 buckets, a relative standard error of about 1.6% (about 2 KB)."""
KLL_K = 200
"""KLL accuracy: a normalized rank error of about 1.3% (99% confidence), a few KB per column."""
EXACT_VALUES = 1000
"""Distinct values of a string column counted exactly before a frequent-items sketch takes over."""
FREQUENT_LG_MAP = 10
"""Frequent-items sketch map of 1,024 slots: counts within about 0.35% of the rows."""


def _kind(arrow: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_integer(arrow):
        return "int"
    if pa.types.is_floating(arrow):
        return "float"
    if pa.types.is_timestamp(arrow) or pa.types.is_date(arrow):
        return "temporal"
    if pa.types.is_string(arrow):
        return "string"
    if pa.types.is_boolean(arrow):
        return "bool"
    if pa.types.is_binary(arrow):
        return "binary"
    return "other"


def _before(a: Any, b: Any) -> bool:
    """``a < b`` in DuckDB's order, where NaN is larger than every number."""
    if isinstance(a, float) and math.isnan(a):
        return False
    if isinstance(b, float) and math.isnan(b):
        return True
    return bool(a < b)


def _moments(n1: int, mean1: float, m21: float, n2: int, mean2: float, m22: float) -> tuple[float, float]:
    """Mean and sum of squared deviations of two parts together (Chan, Golub and LeVeque)."""
    n = n1 + n2
    delta = mean2 - mean1
    return mean1 + delta * n2 / n, m21 + m22 + delta * delta * n1 * n2 / n


class ColumnState:
    """The mergeable statistics of one column (see the module docs)."""

    def __init__(self, kind: str) -> None:
        import datasketches as ds

        self.kind = kind
        self.count = 0  # non-null values (NaN included, as DuckDB counts them)
        self.nulls = 0
        self.finite = True  # no NaN or infinity seen: mean and std are defined
        self.mean = 0.0
        self.m2 = 0.0
        self.lo: Any = None  # float (numbers), str (strings) or int (times: the stored integer)
        self.hi: Any = None
        self.hll = ds.hll_sketch(HLL_LG_K, ds.HLL_4)
        self.kll = ds.kll_doubles_sketch(KLL_K) if kind in ("int", "float") else None
        self.values: dict[Any, int] | None = {} if kind in ("string", "bool") else None
        self.frequent: Any = None  # frequent_strings_sketch once values outgrew EXACT_VALUES

    # --- adding rows ---------------------------------------------------------------------
    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        """Count the values of ``column`` (an Arrow array of this column's type)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        nulls = column.null_count
        self.nulls += nulls
        values = column.drop_null() if nulls else column
        if len(values) == 0:
            return
        self.count += len(values)
        if self.kind in ("int", "float"):
            self._add_numbers(values)
            return
        if self.kind == "temporal":
            width = pa.int32() if pa.types.is_date(values.type) else pa.int64()
            values = values.cast(width).cast(pa.int64())
            self._bounds(*pc.min_max(values).values())
            self._distinct(pc.unique(values).to_numpy().tolist())
            return
        if self.kind in ("string", "bool"):
            if self.kind == "string":
                self._bounds(*pc.min_max(values).values())
            counts = pc.value_counts(values)
            items = counts.field("values").to_pylist()
            self._distinct([int(v) for v in items] if self.kind == "bool" else items)
            self._count_values(dict(zip(items, counts.field("counts").to_pylist(), strict=True)))
            return
        if self.kind == "binary":
            self._distinct([v.hex() for v in pc.unique(values).to_pylist()])
            return
        self._distinct([repr(v) for v in values.to_pylist()])  # lists: hashed by their text

    def _add_numbers(self, values: pa.Array | pa.ChunkedArray) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        x = np.asarray(values.cast(pa.float64(), safe=False).to_numpy(), dtype=np.float64)
        nan = np.isnan(x)
        real = x[~nan] if nan.any() else x
        self._bounds(
            float(real.min()) if real.size else math.nan, math.nan if nan.any() else float(real.max())
        )
        if self.finite and np.isfinite(real).all() and real.size == x.size:
            mean = float(real.mean())
            m2 = float(np.square(real - mean).sum())
            before = self.count - x.size
            self.mean, self.m2 = (
                (mean, m2) if before == 0 else _moments(before, self.mean, self.m2, x.size, mean, m2)
            )
        else:
            self.finite = False
        assert self.kll is not None
        if real.size:  # the binding takes writable arrays only
            self.kll.update(real if real.flags.writeable else real.copy())
        self._distinct(pc.unique(values).to_numpy().tolist())  # integers hashed as integers

    def _bounds(self, lo: Any, hi: Any) -> None:
        if lo is not None and hasattr(lo, "as_py"):
            lo, hi = lo.as_py(), hi.as_py()
        if self.lo is None or _before(lo, self.lo):
            self.lo = lo
        if self.hi is None or _before(self.hi, hi):
            self.hi = hi

    def _distinct(self, items: list[Any]) -> None:
        deque(map(self.hll.update, items), maxlen=0)  # twice as fast as a loop: no bytecode per item

    def _count_values(self, counts: dict[Any, int]) -> None:
        import datasketches as ds

        if self.values is not None:
            for value, n in counts.items():
                self.values[value] = self.values.get(value, 0) + n
            if len(self.values) <= EXACT_VALUES:
                return
            counts, self.values = self.values, None
            self.frequent = ds.frequent_strings_sketch(FREQUENT_LG_MAP)
        deque(map(self.frequent.update, counts.keys(), counts.values()), maxlen=0)

    # --- merging -------------------------------------------------------------------------
    def merge(self, other: ColumnState) -> None:
        """Add the rows ``other`` counted to this state (both of the same column)."""
        import datasketches as ds

        if other.count and self.count:
            if self.finite and other.finite:
                self.mean, self.m2 = _moments(
                    self.count, self.mean, self.m2, other.count, other.mean, other.m2
                )
            else:
                self.finite = False
        elif other.count:
            self.finite, self.mean, self.m2 = other.finite, other.mean, other.m2
        if other.count:
            self._bounds(other.lo, other.hi)
        self.count += other.count
        self.nulls += other.nulls
        union = ds.hll_union(HLL_LG_K)
        union.update(self.hll)
        union.update(other.hll)
        self.hll = union.get_result(ds.HLL_4)
        if self.kll is not None and other.kll is not None:
            self.kll.merge(other.kll)
        if other.values is not None:
            self._count_values(other.values)
        elif other.frequent is not None:
            if self.values is not None:  # take over the other's sketch with this state's counts
                mine, self.values = self.values, None
                self.frequent = ds.frequent_strings_sketch.deserialize(other.frequent.serialize())
                for value, n in mine.items():
                    self.frequent.update(value, n)
            else:
                self.frequent.merge(other.frequent)

    # --- figures -------------------------------------------------------------------------
    def figures(self, dtype: str, rows: int) -> dict[str, Any]:
        """This column's statistics in :func:`~fti.features.statistics.compute_statistics`'s shape
        (times' min and max still as stored integers: :meth:`TableState.statistics` renders them)."""
        numeric = self.kind in ("int", "float")
        entry: dict[str, Any] = {
            "dtype": dtype,
            "count": self.count,
            "nulls": rows - self.count,
            "approx_distinct": round(self.hll.get_estimate()) if self.count else 0,
            "mean": _num(self.mean) if numeric and self.count and self.finite else None,
            "std": (
                _num(math.sqrt(self.m2 / (self.count - 1)))
                if numeric and self.count > 1 and self.finite
                else None
            ),
            "min": _num(self.lo) if numeric else self.lo,
            "max": _num(self.hi) if numeric else self.hi,
        }
        if numeric:
            entry["histogram"] = self._histogram(entry["min"], entry["max"])
        elif self.kind in ("string", "bool"):
            entry["top_values"] = self._top_values()
            if self.frequent is not None:
                entry["top_values_approximate"] = True
        return entry

    def _histogram(self, lo: float | None, hi: float | None) -> dict[str, Any]:
        if lo is None or hi is None:
            return {"edges": [], "counts": []}
        if lo == hi:
            return {"edges": [lo, hi], "counts": [float(self.count)]}
        assert self.kll is not None
        width = (hi - lo) / HISTOGRAM_BINS
        edges = [lo + width * i for i in range(HISTOGRAM_BINS + 1)]
        n = self.kll.n
        # share of values below each interior edge; the last bin holds the maximum
        below = [0.0] + [self.kll.get_rank(edge, False) for edge in edges[1:-1]] + [1.0]
        counts = [float(round((below[i + 1] - below[i]) * n)) for i in range(HISTOGRAM_BINS)]
        histogram: dict[str, Any] = {"edges": edges, "counts": counts}
        if self.kll.is_estimation_mode():
            histogram["approximate"] = True
        return histogram

    def _top_values(self) -> list[dict[str, Any]]:
        if self.values is not None:
            ranked = sorted(self.values.items(), key=lambda item: (-item[1], item[0]))
        else:
            import datasketches as ds

            items = self.frequent.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
            ranked = sorted(((item[0], int(item[1])) for item in items), key=lambda i: (-i[1], i[0]))
        return [{"value": v, "count": n} for v, n in ranked[:TOP_VALUES]]

    # --- storage -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        return {
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "finite": self.finite,
            "mean": self.mean,
            "m2": self.m2,
            "lo": self.lo,
            "hi": self.hi,
            "hll": b64(self.hll.serialize_compact()),
            "kll": None if self.kll is None else b64(self.kll.serialize()),
            "values": None if self.values is None else list(self.values.items()),
            "frequent": None if self.frequent is None else b64(self.frequent.serialize()),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnState:
        import datasketches as ds

        state = cls(data["kind"])
        state.count, state.nulls, state.finite = data["count"], data["nulls"], data["finite"]
        state.mean, state.m2, state.lo, state.hi = data["mean"], data["m2"], data["lo"], data["hi"]
        state.hll = ds.hll_sketch.deserialize(base64.b64decode(data["hll"]))
        if data["kll"] is not None:
            state.kll = ds.kll_doubles_sketch.deserialize(base64.b64decode(data["kll"]))
        state.values = None if data["values"] is None else {v: n for v, n in data["values"]}
        if data["frequent"] is not None:
            state.frequent = ds.frequent_strings_sketch.deserialize(base64.b64decode(data["frequent"]))
        return state


class TableState:
    """The mergeable statistics of every column of a table (see the module docs)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows = 0
        self.columns = {field.name: ColumnState(_kind(field.type)) for field in schema}

    @classmethod
    def of(cls, data: pa.Table | Any) -> TableState:
        """The state of every row of ``data``: an Arrow table, or a dataset read batch by batch."""
        import pyarrow as pa

        state = cls(data.schema)
        for batch in [data] if isinstance(data, pa.Table) else data.to_batches():
            state.rows += batch.num_rows
            for field, column in zip(data.schema, batch.columns, strict=True):
                state.columns[field.name].add(column)
        return state

    def matches(self, schema: pa.Schema) -> bool:
        """Whether ``schema`` has the columns this state counted, in order, of types it counts
        alike (an in-memory table and the stored table may spell a type differently)."""
        return _signature(self.schema) == _signature(schema)

    def merge(self, other: TableState) -> None:
        """Add the rows ``other`` counted (a state of the same columns) to this state."""
        if not self.matches(other.schema):
            raise ValueError("the states count different columns")
        self.rows += other.rows
        for name, column in self.columns.items():
            column.merge(other.columns[name])

    def statistics(self) -> dict[str, dict[str, Any]]:
        """The statistics of the rows counted, in :func:`compute_statistics`' shape."""
        stats = {
            field.name: self.columns[field.name].figures(str(field.type), self.rows) for field in self.schema
        }
        temporal = [
            f for f in self.schema if self.columns[f.name].kind == "temporal" and stats[f.name]["count"]
        ]
        if temporal:
            _render_times(stats, temporal)
        return stats

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "schema": base64.b64encode(self.schema.serialize().to_pybytes()).decode(),
            "rows": self.rows,
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
        }
        return zlib.compress(json.dumps(body).encode())  # json: NaN and infinity round-trip

    @classmethod
    def from_bytes(cls, data: bytes) -> TableState | None:
        """The state :meth:`to_bytes` wrote, or None when it is of another format."""
        import pyarrow as pa

        body = json.loads(zlib.decompress(data))
        if body.get("format") != FORMAT:
            return None
        state = cls.__new__(cls)
        state.schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(body["schema"])))
        state.rows = body["rows"]
        state.columns = {name: ColumnState.from_dict(c) for name, c in body["columns"].items()}
        return state


def _signature(schema: pa.Schema) -> list[tuple[str, str, str]]:
    kinds = [_kind(f.type) for f in schema]
    return [(f.name, k, str(f.type) if k == "temporal" else "") for f, k in zip(schema, kinds, strict=True)]


_renderer: tuple[int, Any] | None = None  # (process id, DuckDB connection): connecting costs more
_render_lock = threading.Lock()  # than rendering; one connection per process, one user at a time


def _render_times(stats: dict[str, dict[str, Any]], fields: list[pa.Field]) -> None:
    """Min and max of time columns as text in DuckDB's format (as the full computation shows them)."""
    import pyarrow as pa

    from fti._duckdb import connect
    from fti._duckdb import quote as _q

    global _renderer
    arrays = []
    for field in fields:
        raw = pa.array([stats[field.name]["min"], stats[field.name]["max"]], pa.int64())
        if pa.types.is_date(field.type):
            raw = raw.cast(pa.int32())
        arrays.append(raw.cast(field.type))
    bounds = pa.table(arrays, names=[f.name for f in fields])
    sql = f"SELECT {', '.join(f'{_q(f.name)}::VARCHAR' for f in fields)} FROM bounds"
    with _render_lock:
        if _renderer is None or _renderer[0] != os.getpid():  # not a parent's connection after fork
            _renderer = (os.getpid(), connect(threads=1))
        con = _renderer[1]
        con.register("bounds", bounds)
        try:
            rows = con.execute(sql).fetchall()
        finally:
            con.unregister("bounds")
    for i, field in enumerate(fields):
        stats[field.name]["min"], stats[field.name]["max"] = rows[0][i], rows[1][i]


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
