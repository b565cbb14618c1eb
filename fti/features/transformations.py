"""Model-dependent transformations: specs, fitting on training data, and the one apply path.

A feature view maps feature names to transformation specs:

- ``"standard_scaler"``: ``(x - mean) / std`` (population std; a zero std counts as 1).
- ``"min_max_scaler"``: ``(x - min) / (max - min)`` (a zero range counts as 1).
- ``"robust_scaler"``: ``(x - median) / (q75 - q25)`` (a zero IQR counts as 1).
- ``"label_encoder"``: the index of the value among the sorted training categories, as int64.
- ``"one_hot_encoder"``: one float64 column ``<feature>_<category>`` per training category.
- ``"log1p"``: ``log(1 + x)``; values <= -1 give NaN.
- ``"bucketize(b1, b2, ...)"``: the bucket index ``i`` with ``b[i-1] <= x < b[i]`` (0..len(b)), int64.
- ``"package.module:function"`` (or ``package.module.function``): a custom, stateless function
  taking a numpy array (float64 for numeric features, object otherwise) and returning a numeric
  array of the same length; its output is float64.

Online vectors of one entity go through each step's one-row twin (plain Python arithmetic on one
value, compiled beside the vectorized step): numpy's per-call overhead would otherwise be most of
a single lookup's cost. The twins give bit-identical results (a property test holds them to it).

Statistics are fitted on the training split only and stored with the training-dataset version.
Federated training fits them without pooling rows: each part's :func:`sufficient_statistics`
(counts, sums, squared deviations, category counts) are merged by :func:`combine_statistics`.

**Unseen and missing values never raise**: a category not seen in training (or a null) encodes as
:data:`UNSEEN_CATEGORY` (``-1``) with ``label_encoder`` and as all zeros with ``one_hot_encoder``;
numeric transformations map null to NaN, and ``bucketize`` maps null to ``-1``.

:class:`Transformer` is the only code that applies transformations. Training data, batch data
and online feature vectors all call it, with Arrow columns or Python lists as input, so the
three paths cannot drift apart (ARCHITECTURE.md invariant 2, "no skew").
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fti.errors import SchemaError, ValidationError
from fti.features.row_steps import RowStep, compile_row

if TYPE_CHECKING:
    import pyarrow as pa

UNSEEN_CATEGORY = -1
"""The ``label_encoder`` code of a category not seen in training (and of nulls)."""

NUMERIC = ("standard_scaler", "min_max_scaler", "robust_scaler", "log1p", "bucketize")
CATEGORICAL = ("label_encoder", "one_hot_encoder")
BUILTINS = (*NUMERIC, *CATEGORICAL)
FITTED = ("standard_scaler", "min_max_scaler", "robust_scaler", *CATEGORICAL)
_NUMERIC_DTYPES = {"int8", "int16", "int32", "int64", "float32", "float64"}
_CATEGORICAL_DTYPES = {"int8", "int16", "int32", "int64", "string", "bool"}
_BUCKETIZE = re.compile(r"^bucketize\((.*)\)$", re.DOTALL)
_PATH = re.compile(r"^[A-Za-z_][\w.]*[.:][A-Za-z_]\w*$")


@dataclass(frozen=True)
class Spec:
    """A parsed transformation spec."""

    kind: str
    """A built-in name or ``"custom"``."""
    boundaries: tuple[float, ...] = ()
    function: str = ""

    @property
    def needs_fit(self) -> bool:
        return self.kind in FITTED


def bucketize(boundaries: Sequence[float]) -> str:
    """The spec string of a bucketize transformation, e.g. ``bucketize([0, 10, 100])``."""
    return f"bucketize({', '.join(repr(float(b)) for b in boundaries)})"


def parse(spec: object, feature: str) -> Spec:
    """Parse and check one spec (without looking at data)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError(f"transformation of {feature!r} must be a name string, got {spec!r}")
    spec = spec.strip()
    if spec in BUILTINS and spec != "bucketize":
        return Spec(spec)
    match = _BUCKETIZE.match(spec)
    if match or spec == "bucketize":
        try:
            bounds = tuple(float(b) for b in (match.group(1) if match else "").split(",") if b.strip())
        except ValueError:
            bounds = ()
        if not bounds or list(bounds) != sorted(set(bounds)) or any(np.isnan(bounds)):
            raise ValidationError(
                f"bucketize of {feature!r} needs strictly increasing numeric boundaries, e.g. "
                f"'bucketize(0, 10, 100)'; got {spec!r}"
            )
        return Spec("bucketize", boundaries=bounds)
    if _PATH.match(spec):
        load_function(spec, feature)
        return Spec("custom", function=spec)
    raise ValidationError(
        f"unknown transformation {spec!r} for {feature!r}: use one of {', '.join(BUILTINS)} "
        "or the import path of a function ('package.module:function')"
    )


def load_function(path: str, feature: str) -> Callable[[np.ndarray], Any]:
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(
            f"transformation {path!r} of {feature!r} cannot be imported ({exc}); it must be an "
            "importable function such as 'mypackage.features:clip_amount'"
        ) from None
    if not callable(function):
        raise ValidationError(f"transformation {path!r} of {feature!r} is not a function")
    return function  # type: ignore[no-any-return]


def check(specs: Mapping[str, Spec], dtypes: Mapping[str, str]) -> None:
    """Each transformed feature must exist and have a dtype its transformation accepts."""
    for feature, spec in specs.items():
        if feature not in dtypes:
            raise SchemaError(
                f"transformation on {feature!r}, which is not a feature of the query "
                f"(features: {list(dtypes)})"
            )
        dtype = dtypes[feature]
        if spec.kind in NUMERIC and dtype not in _NUMERIC_DTYPES:
            raise SchemaError(
                f"{spec.kind} needs a numeric feature, but {feature!r} is {dtype}; "
                "use label_encoder or one_hot_encoder for categories"
            )
        if spec.kind in CATEGORICAL and dtype not in _CATEGORICAL_DTYPES:
            raise SchemaError(
                f"{spec.kind} needs a string, integer or bool feature, but {feature!r} is {dtype}; "
                "bucketize numeric features first or use a scaler"
            )


# --- input conversion: Arrow columns (training, batch) and Python lists (online) ----------------
def _floats(values: Any) -> np.ndarray:
    if isinstance(values, list):
        return np.array(values, dtype=np.float64)
    import pyarrow as pa
    import pyarrow.compute as pc

    column = pc.cast(values, pa.float64(), safe=False)
    return column.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def _objects(values: Any) -> list[Any]:
    return values if isinstance(values, list) else values.to_pylist()  # type: ignore[no-any-return]


# --- fitting ----------------------------------------------------------------------------------
def fit(specs: Mapping[str, Spec], columns: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Fitted statistics per transformed feature, from the training rows ``columns[feature]``.

    The result is JSON-ready and exact: floats survive a JSON round trip bit for bit.
    """
    stats: dict[str, dict[str, Any]] = {}
    for feature, spec in specs.items():
        if not spec.needs_fit:
            continue
        values = columns[feature]
        if spec.kind in CATEGORICAL:
            distinct = {v for v in _objects(values) if v is not None}
            stats[feature] = {"categories": sorted(distinct)}
            continue
        x = _floats(values)
        x = x[~np.isnan(x)]
        if spec.kind == "standard_scaler":
            mean, std = (float(np.mean(x)), float(np.std(x))) if x.size else (0.0, 1.0)
            stats[feature] = {"mean": mean, "std": std}
        elif spec.kind == "min_max_scaler":
            lo, hi = (float(np.min(x)), float(np.max(x))) if x.size else (0.0, 1.0)
            stats[feature] = {"min": lo, "max": hi}
        else:  # robust_scaler
            if x.size:
                q25, median, q75 = (float(v) for v in np.percentile(x, [25.0, 50.0, 75.0]))
            else:
                q25, median, q75 = 0.0, 0.0, 1.0
            stats[feature] = {"median": median, "q25": q25, "q75": q75}
    return stats


# --- fitting without pooling rows: sufficient statistics -------------------------------------
def sufficient_statistics(specs: Mapping[str, Spec], columns: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-feature statistics of one part of the training rows from which :func:`fit` can be
    recovered without seeing the rows (federated training: one part per client).

    ``standard_scaler``: ``count``, ``sum`` and ``m2`` (the sum of squared deviations from this
    part's mean); ``min_max_scaler``: ``count``, ``min``, ``max``; encoders: ``counts``, a list of
    ``[category, rows]`` pairs. Nulls and NaNs are left out, as in :func:`fit`. The result is
    JSON-ready. Combine the parts with :func:`combine_statistics`.

    Raises:
        ValidationError: a ``robust_scaler``: quantiles have no sufficient statistics.
    """
    stats: dict[str, dict[str, Any]] = {}
    for feature, spec in specs.items():
        if not spec.needs_fit:
            continue
        if spec.kind == "robust_scaler":
            raise ValidationError(
                f"robust_scaler on {feature!r} needs quantiles of all rows, which cannot be combined "
                "from per-partition statistics; use standard_scaler or min_max_scaler, or a declared "
                "encoding such as bucketize(...) with fixed boundaries"
            )
        values = columns[feature]
        if spec.kind in CATEGORICAL:
            counts: dict[Any, int] = {}
            for value in _objects(values):
                if value is not None:
                    counts[value] = counts.get(value, 0) + 1
            stats[feature] = {"counts": [[k, counts[k]] for k in sorted(counts)]}
            continue
        x = _floats(values)
        x = x[~np.isnan(x)]
        if spec.kind == "standard_scaler":
            total = float(np.sum(x)) if x.size else 0.0
            m2 = float(np.sum((x - total / x.size) ** 2)) if x.size else 0.0
            stats[feature] = {"count": int(x.size), "sum": total, "m2": m2}
        else:  # min_max_scaler
            lo, hi = (float(np.min(x)), float(np.max(x))) if x.size else (None, None)
            stats[feature] = {"count": int(x.size), "min": lo, "max": hi}
    return stats


def combine_statistics(
    specs: Mapping[str, Spec], parts: Sequence[Mapping[str, Mapping[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """The statistics :func:`fit` would give on all rows, from the :func:`sufficient_statistics`
    of disjoint parts of them (means and variances by Chan's parallel formulas; equal to the
    pooled fit up to floating-point rounding, categories exactly)."""
    stats: dict[str, dict[str, Any]] = {}
    for feature, spec in specs.items():
        if not spec.needs_fit:
            continue
        pieces = [part[feature] for part in parts]
        if spec.kind in CATEGORICAL:
            seen = {value for piece in pieces for value, count in piece["counts"] if count > 0}
            stats[feature] = {"categories": sorted(seen)}
            continue
        present = [piece for piece in pieces if piece["count"] > 0]
        if spec.kind == "standard_scaler":
            n = sum(int(p["count"]) for p in present)
            if not n:
                stats[feature] = {"mean": 0.0, "std": 1.0}
                continue
            mean = sum(float(p["sum"]) for p in present) / n
            m2 = sum(
                float(p["m2"]) + int(p["count"]) * (float(p["sum"]) / int(p["count"]) - mean) ** 2
                for p in present
            )
            stats[feature] = {"mean": mean, "std": float(np.sqrt(m2 / n))}
        elif spec.kind == "min_max_scaler":
            if not present:
                stats[feature] = {"min": 0.0, "max": 1.0}
                continue
            lows, highs = [float(p["min"]) for p in present], [float(p["max"]) for p in present]
            stats[feature] = {"min": min(lows), "max": max(highs)}
        else:
            raise ValidationError(f"{spec.kind} on {feature!r} cannot be combined from partial statistics")
    return stats


# --- applying -----------------------------------------------------------------------------------
Step = Callable[[Any], list[np.ndarray]]


def _scale(center: float, scale: float) -> Step:
    def apply(values: Any) -> list[np.ndarray]:
        return [(_floats(values) - center) / scale]

    return apply


def _log1p(values: Any) -> list[np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log1p(_floats(values))
    out[np.isinf(out)] = np.nan
    return [out]


def _bucketize(boundaries: tuple[float, ...]) -> Step:
    edges = np.array(boundaries, dtype=np.float64)

    def apply(values: Any) -> list[np.ndarray]:
        x = _floats(values)
        out = np.searchsorted(edges, x, side="right").astype(np.int64)
        out[np.isnan(x)] = -1
        return [out]

    return apply


def _encoder(categories: list[Any], one_hot: bool) -> Step:
    codes = {value: index for index, value in enumerate(categories)}
    width = len(categories)
    columns = np.arange(width)

    def apply(values: Any) -> list[np.ndarray]:
        encoded = np.fromiter((codes.get(v, UNSEEN_CATEGORY) for v in _objects(values)), dtype=np.int64)
        if not one_hot:
            return [encoded]
        matrix = (encoded[:, None] == columns).astype(np.float64)
        return list(matrix.T)

    return apply


def _custom(path: str, feature: str, numeric: bool) -> Step:
    function = load_function(path, feature)

    def apply(values: Any) -> list[np.ndarray]:
        x = _floats(values) if numeric else np.array(_objects(values), dtype=object)
        out = np.asarray(function(x), dtype=np.float64)
        if out.shape != x.shape:
            raise ValidationError(
                f"transformation {path!r} of {feature!r} returned shape {out.shape} for input "
                f"shape {x.shape}; it must return one value per input value"
            )
        return [out]

    return apply


def _vector_row(step: Step, width: int) -> RowStep:
    """A custom function's one-row twin: the vectorized step on a one-element list."""
    if width == 1:
        return lambda value: step([value])[0].tolist()[0]
    return lambda value: [column.tolist()[0] for column in step([value])]


class Transformer:
    """The fitted transformations of a feature view, compiled once into closures.

    ``apply`` takes one column per input feature (an Arrow array or a Python list, in
    :attr:`input_names` order) and returns the model-input columns in :attr:`output_names` order:
    untransformed features pass through unchanged, transformed ones come back as numpy arrays.
    """

    def __init__(
        self,
        features: Sequence[tuple[str, str]],
        specs: Mapping[str, Spec],
        stats: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.input_names = [name for name, _ in features]
        self.output_names: list[str] = []
        self.output_dtypes: dict[str, str] = {}
        self.steps: list[Step | None] = []
        self._row_steps: list[tuple[int, RowStep]] = []
        """(input position, twin) of the steps with one output, applied in place."""
        self._row_expanding: list[tuple[int, RowStep]] = []
        """(input position, twin) of the steps with several outputs (applied last position first)."""
        self.outputs_of: dict[str, list[str]] = {}
        """The model-input columns each input feature becomes (one, or one per one-hot category)."""
        self.affine: dict[str, tuple[float, float]] = {}
        """``(center, scale)`` of the features whose transformation is ``(x - center) / scale``
        (the scalers): a linear model can fold it into its weights (:mod:`fti.features.factorized`)."""
        for name, dtype in features:
            spec = specs.get(name)
            if spec is None:
                self.steps.append(None)
                self._add(name, dtype)
                self.outputs_of[name] = [name]
                continue
            if spec.needs_fit and name not in stats:
                raise ValidationError(
                    f"{spec.kind} on {name!r} has no fitted statistics; create training data first "
                    "(fv.create_training_data() or fv.train_test_split())"
                )
            step, outputs = _compile(name, dtype, spec, stats.get(name, {}))
            self.steps.append(step)
            twin = compile_row(spec.kind, spec.boundaries, stats.get(name, {}), UNSEEN_CATEGORY)
            twin = twin or _vector_row(step, len(outputs))
            expanding = len(outputs) > 1 or spec.kind == "one_hot_encoder"
            (self._row_expanding if expanding else self._row_steps).append((len(self.steps) - 1, twin))
            for output, out_dtype in outputs:
                self._add(output, out_dtype)
            self.outputs_of[name] = [output for output, _ in outputs]
            affine = _affine(spec, stats.get(name, {}))
            if affine is not None:
                self.affine[name] = affine

    def _add(self, name: str, dtype: str) -> None:
        if name in self.output_dtypes:
            raise SchemaError(
                f"transformed column {name!r} clashes with another feature of the view; rename one "
                "with a join prefix"
            )
        self.output_names.append(name)
        self.output_dtypes[name] = dtype

    def apply(self, columns: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for step, column in zip(self.steps, columns, strict=True):
            if step is None:
                out.append(column)
            else:
                out.extend(step(column))
        return out

    def apply_row(self, values: Sequence[Any]) -> list[Any]:
        """The model-input values of one row (``values`` in :attr:`input_names` order): the same
        results as :meth:`apply` on one-row columns, as plain Python values."""
        if len(values) != len(self.steps):
            raise ValueError(f"apply_row takes {len(self.steps)} values, got {len(values)}")
        out = list(values)
        for position, twin in self._row_steps:
            out[position] = twin(out[position])
        for position, twin in reversed(self._row_expanding):  # the positions before it stay put
            out[position : position + 1] = twin(out[position])
        return out

    def apply_table(self, table: pa.Table, keys: Sequence[str] = ()) -> pa.Table:
        """The model-input columns of ``table`` (which holds every input feature) as a table,
        after those of the ``keys`` columns that are not model inputs themselves."""
        import pyarrow as pa

        names = self.output_names
        columns = self.apply([table.column(name) for name in self.input_names])
        keys = [k for k in keys if k not in names]
        return pa.table([*(table.column(k) for k in keys), *columns], names=[*keys, *names])


def _affine(spec: Spec, stats: Mapping[str, Any]) -> tuple[float, float] | None:
    """``(center, scale)`` of a scaler (a zero or non-finite scale counts as 1), else None."""
    if spec.kind == "standard_scaler":
        center, scale = stats["mean"], stats["std"]
    elif spec.kind == "min_max_scaler":
        center, scale = stats["min"], stats["max"] - stats["min"]
    elif spec.kind == "robust_scaler":
        center, scale = stats["median"], stats["q75"] - stats["q25"]
    else:
        return None
    return float(center), float(scale) if scale != 0.0 and np.isfinite(scale) else 1.0


def _compile(
    name: str, dtype: str, spec: Spec, stats: Mapping[str, Any]
) -> tuple[Step, list[tuple[str, str]]]:
    kind = spec.kind
    affine = _affine(spec, stats)
    if affine is not None:
        return _scale(*affine), [(name, "float64")]
    if kind == "log1p":
        return _log1p, [(name, "float64")]
    if kind == "bucketize":
        return _bucketize(spec.boundaries), [(name, "int64")]
    if kind == "label_encoder":
        return _encoder(list(stats["categories"]), one_hot=False), [(name, "int64")]
    if kind == "one_hot_encoder":
        outputs = [(f"{name}_{category}", "float64") for category in stats["categories"]]
        return _encoder(list(stats["categories"]), one_hot=True), outputs
    return _custom(spec.function, name, dtype in _NUMERIC_DTYPES), [(name, "float64")]
