"""On-demand (request-time) features: one vectorized function computes a feature in training,
batch data and online serving.

.. code-block:: python

    @fti.on_demand(inputs=["amount"], outputs={"amount_bin": "int64"})
    def amount_bin(amount): ...                      # numpy arrays in, one value per row out

    fs.get_or_create_feature_view("fraud", query=q, on_demand=[amount_bin, "pkg.features:distances"],
                                  request_fields=["amount", "lat", "lon", "datetime"])

An input is a column of the view's point-in-time join (a selected feature, or the spine's primary
key or event time; never a label) or an output of an earlier function of the list. Training and
batch data call the function once on the joined columns (from stored values); the online path
calls it on the request's values and the looked-up online rows. Both paths convert every input
through Arrow to the same numpy dtype and every output through Arrow to the declared dtype, so an
elementwise function gives the same bits in both (ARCHITECTURE.md invariant 2, "no skew").

**Request fields** are columns a serving request must send (the live transaction's amount and
place): they are never looked up online, and in training they are read from the stored column.
``drop=[...]`` on the decorator keeps inputs out of the model's features (they are only inputs of
the function).

A function is recorded in the view version by import path with the SHA-256 of its source (its own
source, not that of the helpers it calls). A view whose function changed since the version was
created refuses to compute (:class:`~fti.errors.ConflictError`): create a new view version. The
shape of a view (its features) is known from the catalog record alone, so listing a view never
imports user code; the function is imported at the first computation.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import ConflictError, OnDemandError, SchemaError, ValidationError
from fti.types import DTYPES

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from fti.features.query import Query

_PATH = re.compile(r"^[A-Za-z_][\w.]*[.:][A-Za-z_][\w.]*$")
# numpy kinds a returned array may have for each declared output dtype ("O": Arrow decides)
_KINDS = {
    **dict.fromkeys(("float32", "float64"), "fiuO"),
    **dict.fromkeys(("int8", "int16", "int32", "int64"), "iuO"),
    "bool": "bO",
    "string": "UO",
    "binary": "SO",
    "date": "MO",
    "timestamp": "MO",
}


class OnDemandFunction:
    """A function declared with :func:`on_demand`: still callable as before, plus its declaration."""

    def __init__(
        self,
        function: Callable[..., Any],
        inputs: tuple[str, ...],
        outputs: tuple[tuple[str, str], ...],
        drop: tuple[str, ...],
    ) -> None:
        self.function = function
        self.inputs = inputs
        self.outputs = outputs
        self.drop = drop
        self.path = f"{function.__module__}:{function.__qualname__}"
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"OnDemandFunction({self.path!r}, inputs={list(self.inputs)}, outputs={dict(self.outputs)})"

    @property
    def source_sha256(self) -> str:
        """SHA-256 of the function's source text (decorator included, dedented)."""
        try:
            source = inspect.getsource(self.function)
        except (OSError, TypeError):
            raise ValidationError(
                f"the source of on-demand function {self.path!r} cannot be read; define it in a "
                "module file so its version can be recorded"
            ) from None
        return hashlib.sha256(textwrap.dedent(source).encode()).hexdigest()

    def record(self) -> dict[str, Any]:
        """What a feature view version stores about the function."""
        return {
            "function": self.path,
            "sha256": self.source_sha256,
            "inputs": list(self.inputs),
            "outputs": [[name, dtype] for name, dtype in self.outputs],
            "drop": list(self.drop),
        }


def on_demand(
    inputs: Sequence[str], outputs: Mapping[str, str], *, drop: Sequence[str] = ()
) -> Callable[[Callable[..., Any]], OnDemandFunction]:
    """Declare a vectorized on-demand feature function.

    The function receives one numpy array per input, in ``inputs`` order (float64 for floats,
    int64 for integers without nulls, float64 with NaN for integers with nulls, object for
    strings, ``datetime64[us]`` (UTC) for timestamps) and returns one array-like per output with
    one value per row: the array itself for one output, else a tuple in ``outputs`` order or a
    dict by output name.

    Args:
        inputs: Column names: features of the view's query, the spine's key or event time, or
            outputs of an earlier on-demand function of the view.
        outputs: Output name -> dtype (see :data:`fti.types.DTYPES`).
        drop: Inputs that are not model features themselves (only inputs of this function).

    Raises:
        ValidationError: bad names or dtypes, or a function that cannot take ``len(inputs)``
            positional arguments; raised when the module is imported.
    """
    names = _names(inputs, "inputs")
    if not isinstance(outputs, Mapping) or not outputs:
        raise ValidationError(
            f"outputs must map output names to dtypes, e.g. {{'km': 'float64'}}; got {outputs!r}"
        )
    out_names = _names(list(outputs), "outputs")
    for name, dtype in outputs.items():
        if dtype not in DTYPES:
            raise ValidationError(
                f"output {name!r} has unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}"
            )
    clash = [n for n in out_names if n in names]
    if clash:
        raise ValidationError(f"outputs {clash} are also inputs; give the outputs new names")
    dropped = _names(drop, "drop", allow_empty=True)
    unknown = [d for d in dropped if d not in names]
    if unknown:
        raise ValidationError(f"drop lists {unknown}, which are not inputs {list(names)}")

    def decorate(function: Callable[..., Any]) -> OnDemandFunction:
        if not callable(function) or isinstance(function, OnDemandFunction):
            raise ValidationError(f"@fti.on_demand decorates a function, got {function!r}")
        try:
            inspect.signature(function).bind(*names)
        except TypeError:
            raise ValidationError(
                f"on-demand function {function.__qualname__!r} cannot take {len(names)} positional "
                f"arguments {list(names)}; it is called with one array per input, in order"
            ) from None
        except ValueError:
            pass  # no signature (a builtin): checked when it is called
        return OnDemandFunction(function, names, tuple((n, outputs[n]) for n in out_names), dropped)

    return decorate


def _names(values: Any, what: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence) or not (values or allow_empty):
        raise ValidationError(f"{what} must be a list of column names, got {values!r}")
    if not all(isinstance(v, str) and v for v in values):
        raise ValidationError(f"{what} must be a list of column names, got {values!r}")
    if len(set(values)) != len(values):
        raise ValidationError(f"{what} lists a name twice: {list(values)}")
    return tuple(values)


def resolve(ref: Any) -> OnDemandFunction:
    """The on-demand function ``ref`` names: an :class:`OnDemandFunction` or its import path,
    checked to be importable under that path (training, batch and the model server import it)."""
    if isinstance(ref, OnDemandFunction):
        path = ref.path
    elif isinstance(ref, str) and _PATH.match(ref.strip()):
        path = ref.strip()
    else:
        raise ValidationError(
            f"on_demand entries are functions decorated with @fti.on_demand or their import paths "
            f"('package.module:function'), got {ref!r}"
        )
    if path.startswith("__main__") or "<locals>" in path:
        raise ValidationError(
            f"on-demand function {path!r} is not importable (defined in a script or inside a function); "
            "define it at the top level of a module so training, batch and the model server import it"
        )
    found = _import(path)
    if not isinstance(found, OnDemandFunction):
        raise ValidationError(f"{path!r} is not decorated with @fti.on_demand(inputs=..., outputs=...)")
    if isinstance(ref, OnDemandFunction) and found.function is not ref.function:
        raise ValidationError(
            f"on-demand function {path!r} imports as a different object than the one given; define it "
            "once at the top level of its module"
        )
    return found


def _import(path: str) -> Any:
    if ":" in path:
        module_name, attrs = path.split(":", 1)
    else:
        module_name, _, attrs = path.rpartition(".")
    try:
        found: Any = importlib.import_module(module_name)
        for attr in attrs.split("."):
            found = getattr(found, attr)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(
            f"on-demand function {path!r} cannot be imported ({exc}); it must be importable where "
            "training, batch jobs and the model server run"
        ) from None
    return found


def load(record: Mapping[str, Any], view: str) -> OnDemandFunction:
    """The function a view version recorded, checked to be unchanged since.

    Raises:
        ConflictError: its source (or declaration) differs from the recorded one.
    """
    function = resolve(record["function"])
    now = function.record()
    if now != dict(record):
        what = "source" if now["sha256"] != record["sha256"] else "declaration (inputs, outputs, drop)"
        raise ConflictError(
            f"on-demand function {record['function']!r} changed since {view} was created (its {what} "
            f"differs: recorded sha256 {record['sha256'][:12]}, now {now['sha256'][:12]}); training data "
            "and serving would no longer agree: create a new feature view version with the new "
            "function, or restore the old code"
        )
    return function


def check_definition(
    query: Query, labels: Sequence[str], on_demand: Sequence[Any] | None, request_fields: Sequence[str] | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Resolve and check a view's on-demand functions and request fields (imports the functions).

    Returns:
        The records stored with the view and the request fields.

    Raises:
        ValidationError, SchemaError: what is wrong and how to fix it.
    """
    if on_demand is None:
        on_demand = []
    if isinstance(on_demand, str | OnDemandFunction) or not isinstance(on_demand, Sequence):
        raise ValidationError(
            f"on_demand must be a list of on-demand functions or import paths, got {on_demand!r}"
        )
    records = [resolve(ref).record() for ref in on_demand]
    paths = [r["function"] for r in records]
    if len(set(paths)) != len(paths):
        raise ValidationError(f"on_demand lists a function twice: {paths}")
    fields = list(_names(request_fields or [], "request_fields", allow_empty=True))
    OnDemandPlan(records, fields, query, labels, "the feature view")  # checks every name
    return records, fields


@dataclass(frozen=True)
class _Step:
    record: dict[str, Any]
    inputs: tuple[tuple[str, str], ...]
    """(name, dtype) of each input."""
    outputs: tuple[tuple[str, str], ...]


class OnDemandPlan:
    """The on-demand functions of one view version, in order, over its joined columns.

    Built from the catalog record alone; the functions are imported (and their sources checked)
    at the first :meth:`apply`.
    """

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        request_fields: Sequence[str],
        query: Query,
        labels: Sequence[str],
        view: str,
    ) -> None:
        self.view = view
        label_set = set(labels)
        columns = {c.name: c.dtype for c in query.columns() if c.name not in label_set}
        spine = {f.name: f.dtype for f in query.spine.features or []}
        available = {**{k: spine[k] for k in query.key_columns() if k in spine}, **columns}
        steps: list[_Step] = []
        dropped: set[str] = set()
        for record in records:
            path = record["function"]
            inputs = []
            for name in record["inputs"]:
                if name in label_set:
                    raise ValidationError(
                        f"on-demand function {path!r} reads label {name!r}; a feature computed from "
                        "the label would leak it into training"
                    )
                if name not in available:
                    raise SchemaError(
                        f"on-demand function {path!r} reads {name!r}, which is not a column of the "
                        f"view's query, its spine key or event time, or an earlier on-demand output; "
                        f"available: {list(available)}"
                    )
                inputs.append((name, available[name]))
            outputs = tuple((str(n), str(d)) for n, d in record["outputs"])
            for name, dtype in outputs:
                if name in available:
                    raise SchemaError(
                        f"on-demand output {name!r} of {path!r} clashes with a column of the view; "
                        "rename the output"
                    )
                available[name] = dtype
            dropped.update(record["drop"])
            steps.append(_Step(dict(record), tuple(inputs), outputs))
        for field in request_fields:
            if field in label_set or field not in available or any(field in dict(s.outputs) for s in steps):
                raise SchemaError(
                    f"request field {field!r} must be a feature of the view's query or its spine key "
                    "or event time (training data reads its stored value); "
                    f"columns: {[c for c in available if not any(c in dict(s.outputs) for s in steps)]}"
                )
        self.steps = tuple(steps)
        self.request_fields = tuple(request_fields)
        self.raw = {name: dtype for name, dtype in available.items() if not self._is_output(name)}
        """Joined columns the view reads (features and the spine key/event time) -> dtype."""
        self.features: list[tuple[str, str]] = [
            (name, dtype)
            for name, dtype in [*columns.items(), *(o for s in steps for o in s.outputs)]
            if name not in dropped
        ]
        """The model features before transformation: the query's, minus dropped inputs, plus outputs."""
        self._functions: list[OnDemandFunction] | None = None

    def _is_output(self, name: str) -> bool:
        return any(name in dict(step.outputs) for step in self.steps)

    @property
    def outputs(self) -> list[str]:
        return [name for step in self.steps for name, _ in step.outputs]

    def step_outputs(self) -> list[tuple[str, str]]:
        """Every output with its fti dtype, in the order :meth:`apply_table` appends them."""
        return [output for step in self.steps for output in step.outputs]

    @property
    def inputs(self) -> list[str]:
        """Joined columns the functions read."""
        return list(dict.fromkeys(n for s in self.steps for n, _ in s.inputs if n in self.raw))

    def functions(self) -> list[OnDemandFunction]:
        """The functions, imported and checked against their records (once)."""
        if self._functions is None:
            self._functions = [load(step.record, self.view) for step in self.steps]
        return self._functions

    def apply(self, columns: Mapping[str, Any], n: int) -> dict[str, pa.Array]:
        """Every output for ``n`` rows, from the input columns (Arrow arrays or Python lists).

        Raises:
            ValidationError: an input value that does not fit its column's dtype (a request's).
            OnDemandError: a function raised or returned the wrong length or dtype.
        """
        values: dict[str, Any] = dict(columns)
        out: dict[str, pa.Array] = {}
        for step, function in zip(self.steps, self.functions(), strict=True):
            arrays = [as_numpy(values[name], dtype, name) for name, dtype in step.inputs]
            result = _call(function, arrays, n)
            for (name, dtype), array in zip(step.outputs, _split(function, result), strict=True):
                out[name] = values[name] = _as_output(function, name, dtype, array, n)
        return out

    def apply_table(self, table: pa.Table) -> pa.Table:
        """``table`` (the joined rows) with every on-demand output appended."""
        if not self.steps:
            return table
        outputs = self.apply({name: table.column(name) for name in self.inputs}, table.num_rows)
        for name, array in outputs.items():
            table = table.append_column(name, array)
        return table


def as_numpy(values: Any, dtype: str, name: str) -> np.ndarray:
    """A column (Arrow, or Python values from a request or the online store) as the numpy array
    an on-demand function receives: both kinds go through the same Arrow conversion."""
    import pyarrow as pa

    target = _arrow_type(dtype)
    if isinstance(values, pa.Array | pa.ChunkedArray):
        array = values if values.type == target else values.cast(target)
    else:
        if dtype == "timestamp":
            values = [_timestamp(v, name) for v in values]
        try:
            array = pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            bad = next((v for v in values if not _fits(v, target)), values[0] if values else None)
            raise ValidationError(f"input {name!r} holds {bad!r}, which is not a {dtype} value") from None
    return array.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


@functools.cache
def _arrow_type(dtype: str) -> pa.DataType:
    from fti.types import arrow_type

    return arrow_type(dtype)


def _fits(value: Any, target: pa.DataType) -> bool:
    import pyarrow as pa

    try:
        pa.array([value], type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return False
    return True


def _timestamp(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(
                f"input {name!r} holds {value!r}, which is not an ISO 8601 time such as "
                "'2026-04-01T12:00:00+00:00'"
            ) from None
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValidationError(
            f"input {name!r} holds the naive time {value.isoformat()!r}; give a time zone, e.g. "
            f"'{value.isoformat()}+00:00'"
        )
    if value is not None and not isinstance(value, datetime):
        raise ValidationError(f"input {name!r} holds {value!r}; send a time as an ISO 8601 string")
    return value


def _call(function: OnDemandFunction, arrays: list[np.ndarray], n: int) -> Any:
    try:
        return function.function(*arrays)
    except Exception as exc:
        shown = {name: a.tolist() for name, a in zip(function.inputs, arrays, strict=True)} if n <= 3 else ""
        raise OnDemandError(
            f"on-demand function {function.path!r} raised {type(exc).__name__}: {exc}"
            + (f" on inputs {shown}" if shown else f" on {n} rows of inputs {list(function.inputs)}")
        ) from exc


def _split(function: OnDemandFunction, result: Any) -> list[Any]:
    names = [name for name, _ in function.outputs]
    if isinstance(result, Mapping):
        if set(result) != set(names):
            raise OnDemandError(
                f"on-demand function {function.path!r} returned outputs {sorted(result)}; it declares {names}"
            )
        return [result[name] for name in names]
    if len(names) == 1:
        return [result]
    if not isinstance(result, tuple | list) or len(result) != len(names):
        raise OnDemandError(
            f"on-demand function {function.path!r} declares {len(names)} outputs {names}; return a tuple "
            "of that many arrays or a dict by output name"
        )
    return list(result)


def _as_output(function: OnDemandFunction, name: str, dtype: str, value: Any, n: int) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    array = np.asarray(value)
    if array.ndim != 1 or len(array) != n:
        raise OnDemandError(
            f"on-demand function {function.path!r} returned shape {list(array.shape)} for output "
            f"{name!r} from {n} rows; it must return one value per row"
        )
    problem = f"dtype {array.dtype}" if array.dtype.kind not in _KINDS[dtype] else ""
    if not problem:
        target = _arrow_type(dtype)
        try:
            out = pa.array(array)
            return out if out.type == target else out.cast(target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            problem = f"values that are not {dtype} ({exc})"
    raise OnDemandError(
        f"on-demand function {function.path!r} returned {problem} for output {name!r}, declared {dtype}"
    )
