"""Slices and groups of evaluated rows: a column's values, or a numeric column cut into bins.

``slices=["category", fti.bins("amount", [0, 50, 500])]`` splits the rows once per entry: by each
value of ``category``, and by the bins ``[-inf, 0)``, ``[0, 50)``, ``[50, 500)`` and ``[500, inf)``
of ``amount`` (the bins outside the edges only when they hold rows). Sensitive features for the
fairness metrics are given the same way. Missing values form their own ``null`` slice.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import SchemaError, ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

MAX_GROUPS = 100
"""A column sliced by value may have at most this many distinct values (bin a numeric one)."""
NULL = "null"
"""The label of the rows whose slicing column is missing."""


@dataclass(frozen=True)
class Bins:
    """A numeric column cut at ``edges`` into ``[e0, e1)``, ``[e1, e2)``, ... (see :func:`bins`)."""

    column: str
    edges: tuple[float, ...]
    labels: tuple[str, ...] | None = None
    name: str | None = None

    @property
    def feature(self) -> str:
        """The name the slices are reported under (``name``, else the column)."""
        return self.name or self.column

    def describe(self) -> str:
        """``amount bins [0, 50, 500]`` (with ``as age_group`` when renamed)."""
        text = f"{self.column} bins [{', '.join(f'{e:g}' for e in self.edges)}]"
        return text + (f" as {self.name}" if self.name else "")

    def bin_labels(self) -> list[str]:
        """Every bin's label in order: below the first edge, the inner bins, from the last edge."""
        inner = (
            list(self.labels)
            if self.labels
            else [f"[{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(self.edges)]
        )
        return [f"[-inf, {self.edges[0]:g})", *inner, f"[{self.edges[-1]:g}, inf)"]

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "edges": list(self.edges), "labels": self.labels, "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bins:
        labels = data.get("labels")
        return cls(
            data["column"], tuple(data["edges"]), None if labels is None else tuple(labels), data.get("name")
        )


def bins(
    column: str, edges: Sequence[float], *, labels: Sequence[str] | None = None, name: str | None = None
) -> Bins:
    """Slice (or group, for fairness) by a numeric column cut at ``edges``.

    ``fti.bins("amount", [0, 50, 500])`` gives the slices ``[0, 50)`` and ``[50, 500)``, plus
    ``[-inf, 0)`` and ``[500, inf)`` for rows outside the edges; missing values are the ``null``
    slice.

    Args:
        column: A numeric column of the evaluated rows.
        edges: At least two finite numbers, strictly increasing.
        labels: One label per inner bin (``len(edges) - 1``), e.g. ``["young", "middle-aged"]``.
        name: The name the slices are reported and gated under (default: ``column``), e.g.
            ``fti.bins("birth_year", [1900, 1966, 1986, 2100], name="age_group")``.

    Raises:
        ValidationError: a bad column name, edges or labels.
    """
    if not isinstance(column, str) or not column:
        raise ValidationError(f"bins need a column name, got {column!r}")
    if isinstance(edges, str) or not isinstance(edges, Sequence) or len(edges) < 2:
        raise ValidationError(f"bins of {column!r} need at least two edges, e.g. [0, 50, 500]; got {edges!r}")
    if not all(isinstance(e, numbers.Real) and not isinstance(e, bool) and math.isfinite(e) for e in edges):
        raise ValidationError(f"the edges of bins of {column!r} must be finite numbers, got {list(edges)!r}")
    values = tuple(float(e) for e in edges)
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValidationError(
            f"the edges of bins of {column!r} must be strictly increasing, got {list(edges)!r}"
        )
    label_tuple = None
    if labels is not None:
        if isinstance(labels, str) or not all(isinstance(x, str) and x for x in labels):
            raise ValidationError(f"bin labels must be a list of non-empty strings, got {labels!r}")
        label_tuple = tuple(labels)
        if len(label_tuple) != len(values) - 1 or len(set(label_tuple)) != len(label_tuple):
            raise ValidationError(
                f"bins of {column!r} with {len(values)} edges need {len(values) - 1} distinct labels, "
                f"got {list(label_tuple)!r}"
            )
    if name is not None and (not isinstance(name, str) or not name or "=" in name or "@" in name):
        raise ValidationError(f"a bins name must be a non-empty string without '=' or '@', got {name!r}")
    return Bins(column, values, label_tuple, name)


SliceSpec = str | Bins
"""A column name, or :class:`Bins` of a numeric column."""


def parse_specs(specs: object, what: str) -> list[SliceSpec]:
    """Check a ``slices`` or ``sensitive`` argument: a list of column names and :func:`bins`.

    Raises:
        ValidationError: not a list, an entry of another type, or two entries with one name.
    """
    if specs is None:
        return []
    if isinstance(specs, str | Bins) or not isinstance(specs, Sequence):
        raise ValidationError(
            f"{what} must be a list of column names and fti.bins(...), e.g. [{specs!r}]; got {specs!r}"
        )
    parsed: list[SliceSpec] = []
    for spec in specs:
        if isinstance(spec, str):
            if not spec or "=" in spec or "@" in spec:
                raise ValidationError(f"{what}: {spec!r} is not a column name")
        elif not isinstance(spec, Bins):
            raise ValidationError(
                f"{what} entries must be column names or fti.bins(...), got {type(spec).__name__} {spec!r}"
            )
        parsed.append(spec)
    names = [feature_of(s) for s in parsed]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValidationError(f"{what} name {twice} more than once; give bins another name=")
    return parsed


def feature_of(spec: SliceSpec) -> str:
    """The name a spec's slices are reported under."""
    return spec if isinstance(spec, str) else spec.feature


def column_of(spec: SliceSpec) -> str:
    """The column a spec reads."""
    return spec if isinstance(spec, str) else spec.column


def describe(spec: SliceSpec) -> str:
    return spec if isinstance(spec, str) else spec.describe()


def spec_to_json(spec: SliceSpec) -> Any:
    return spec if isinstance(spec, str) else spec.to_dict()


def spec_from_json(data: Any) -> SliceSpec:
    return data if isinstance(data, str) else Bins.from_dict(data)


def groups(column: pa.ChunkedArray | pa.Array, spec: SliceSpec) -> tuple[np.ndarray, list[str]]:
    """Each row's group label under ``spec``, and the labels that occur, in order.

    Raises:
        SchemaError: bins of a non-numeric column.
        ValidationError: a column sliced by value with more than :data:`MAX_GROUPS` values.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    valid = np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), dtype=bool)
    if isinstance(spec, Bins):
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise SchemaError(
                f"bins need a numeric column, but {spec.column!r} is {column.type}; slice it by value instead"
            )
        values = np.asarray(pc.fill_null(column.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False))
        valid &= ~np.isnan(values)
        names = np.asarray(spec.bin_labels(), dtype=object)
        index = np.searchsorted(np.asarray(spec.edges), values, side="right")
        labels = np.where(valid, names[index], NULL)
        order = [n for n in [*names, NULL] if np.any(labels == n)]
        return labels, order
    distinct = pc.unique(column.filter(pc.is_valid(column)))
    if len(distinct) > MAX_GROUPS:
        raise ValidationError(
            f"column {spec!r} has {len(distinct)} distinct values, more than {MAX_GROUPS} slices; cut a "
            f"numeric column into bins with fti.bins({spec!r}, [edges...]), or slice by a coarser column"
        )
    ordered = sorted(distinct.to_pylist(), key=_sort_key)
    texts = [_text(v) for v in ordered]
    position = pc.index_in(column, value_set=pa.array(ordered, type=column.type))  # null for nulls
    index = np.asarray(pc.fill_null(position, len(texts)).to_numpy(zero_copy_only=False), dtype=np.int64)
    labels = np.asarray([*texts, NULL], dtype=object)[index]
    return labels, texts + ([NULL] if not valid.all() else [])


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, numbers.Real) else (1, str(value))


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
