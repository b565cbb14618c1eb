"""From a validated inference request to the model's input matrix, and from outputs to a response.

A plain deployment takes one input per signature input (a feature column, shape ``[n]`` or
``[n, 1]``). An enriched deployment takes the feature view's primary-key column(s) and its request fields
(the live values its on-demand features are computed from), plus any passed features, and
fetches the rest from the online store through the loaded model's
``FeatureViewServing.get_feature_vectors`` — the same code path as ``fv.get_feature_vector``, with
the statistics of the model's training dataset, so the fitted transformations are applied
exactly as in training.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError
from fti.serving.protocol import NUMERIC, InferInput, InferRequest
from fti.serving.request_log import LoggedInputs

if TYPE_CHECKING:
    import numpy as np

    from fti.registry.signature import ModelSignature, TensorSpec


@dataclass(frozen=True)
class PreparedRequest:
    """The rows to predict: a 2-D matrix in signature input order and its row count."""

    matrix: Any
    n: int
    logged: LoggedInputs | None = None
    """What the inference log records as the inputs when it is not ``matrix`` (enriched
    requests: the key columns and the untransformed features)."""


def _rows(inp: InferInput) -> int:
    if len(inp.shape) == 1:
        return inp.shape[0]
    if len(inp.shape) == 2 and inp.shape[1] == 1:
        return inp.shape[0]
    raise ValidationError(
        f"input {inp.name!r}: shape {list(inp.shape)} is not a column; send shape [n] or [n, 1] "
        "with one value per row"
    )


def _check_datatype(inp: InferInput, spec_datatype: str, allow_widening: bool) -> None:
    """An input must have the signature's datatype, as in Triton (a client sending INT64 for an
    FP32 input has a bug worth hearing about); a model registered with ``allow_widening=True``
    also takes datatypes that convert to it without loss (:func:`~fti.registry.signature.widens`)."""
    if inp.datatype == spec_datatype:
        return
    from fti.registry.signature import widens

    if allow_widening and widens(inp.datatype, spec_datatype):
        return
    hint = (
        "it does not convert without loss"
        if allow_widening
        else "register the model with allow_widening=True to accept lossless conversions"
    )
    raise ValidationError(
        f"input {inp.name!r} has datatype {inp.datatype} but the model expects {spec_datatype}; "
        f"send {spec_datatype} ({hint})"
    )


def _check_column_datatype(inp: InferInput, dtype: str) -> None:
    """A passed feature or request field must fit its column: numbers for numeric columns,
    BYTES for strings, binary and times (ISO 8601 text, e.g. ``2026-04-01T12:00:00+00:00``)."""
    if dtype.startswith(("int", "float")):
        ok, shown = inp.datatype in NUMERIC, "numbers"
    elif dtype == "bool":
        ok, shown = inp.datatype == "BOOL" or inp.datatype in NUMERIC, "BOOL"
    else:
        ok = inp.datatype == "BYTES"
        shown = "BYTES (ISO 8601 text)" if dtype in ("timestamp", "date") else "BYTES"
    if not ok:
        raise ValidationError(f"input {inp.name!r} is a {dtype} column; send {shown}, not {inp.datatype}")


def _row_count(inputs: list[InferInput]) -> int:
    counts = {inp.name: _rows(inp) for inp in inputs}
    distinct = set(counts.values())
    if len(distinct) > 1:
        raise ValidationError(
            f"inputs have different row counts: {counts}; every input needs one value per row"
        )
    n = distinct.pop()
    if n == 0:
        raise ValidationError("inputs have no rows (shape [0])")
    return n


def _check_missing(inp: InferInput, allow_missing: bool) -> None:
    if inp.has_missing and not allow_missing:
        raise ValidationError(
            f"input {inp.name!r} contains null/NaN values, which this deployment does not accept "
            "(deploy with allow_missing=True if the model handles missing values)"
        )


def assemble(inputs: list[InferInput], specs: list[TensorSpec]) -> np.ndarray:
    """Stack validated column inputs in the signature's order (float64 when all numeric)."""
    import numpy as np

    by_name = {inp.name: inp for inp in inputs}
    columns = [by_name[s.name].data.reshape(-1) for s in specs]
    if all(c.dtype.kind in "fiub" for c in columns):
        if len(columns) == 1:
            return columns[0].astype(np.float64).reshape(-1, 1)
        return np.column_stack(columns).astype(np.float64, copy=False)
    out = np.empty((len(columns[0]), len(columns)), dtype=object)
    for j, c in enumerate(columns):
        out[:, j] = c
    return out


def prepare_plain(
    request: InferRequest, signature: ModelSignature, *, allow_missing: bool
) -> PreparedRequest:
    """Validate the inputs of a plain (non-enriched) deployment against its signature."""
    specs = {s.name: s for s in signature.inputs}
    unknown = [inp.name for inp in request.inputs if inp.name not in specs]
    if unknown:
        expected = list(specs)
        shown = expected if len(expected) <= 20 else [*expected[:20], "..."]
        raise ValidationError(f"unknown input(s) {unknown}; the model's inputs are {shown}")
    given = {inp.name for inp in request.inputs}
    missing = [name for name in specs if name not in given]
    if missing:
        raise ValidationError(f"missing input(s) {missing}; send one input per model input")
    for inp in request.inputs:
        _check_datatype(inp, specs[inp.name].datatype, signature.allow_widening)
        _check_missing(inp, allow_missing)
    n = _row_count(request.inputs)
    return PreparedRequest(assemble(request.inputs, signature.inputs), n)


@dataclass(frozen=True)
class EnrichPlan:
    """What every request of an enriched deployment is checked and logged against, computed once
    per loaded model (the feature view's properties copy their lists and dicts on every call)."""

    keys: tuple[str, ...]
    raw_names: tuple[str, ...]
    columns: dict[str, str]
    """Request fields and joined columns a request may send -> fti dtype."""
    fields: tuple[str, ...]
    allowed: frozenset[str]
    spec_types: dict[str, str]
    """Signature input -> OIP datatype."""
    allow_widening: bool
    extra_keys: tuple[str, ...]
    """Key columns logged apart (a key that is also a feature is logged once)."""
    sent: tuple[str, ...]
    """Request fields that are only inputs of on-demand features: logged as the request sent them."""
    logged_names: tuple[str, ...]
    logged_dtypes: tuple[str | None, ...]

    @classmethod
    def of(cls, feature_view: Any, signature: ModelSignature) -> EnrichPlan:
        keys = tuple(feature_view.primary_key)
        raw_names = tuple(feature_view.raw_feature_names)
        columns = dict(feature_view.request_columns)
        fields = tuple(feature_view.request_fields)
        raw_dtypes = feature_view.raw_feature_dtypes
        key_dtypes = feature_view.key_dtypes
        extra_keys = tuple(k for k in keys if k not in raw_names)
        sent = tuple(f for f in fields if f not in raw_names and f not in keys)
        return cls(
            keys=keys,
            raw_names=raw_names,
            columns=columns,
            fields=fields,
            allowed=frozenset(keys) | frozenset(raw_names) | frozenset(columns),
            spec_types={s.name: s.datatype for s in signature.inputs},
            allow_widening=bool(signature.allow_widening),
            extra_keys=extra_keys,
            sent=sent,
            logged_names=(*extra_keys, *raw_names, *sent),
            logged_dtypes=(
                *(key_dtypes.get(k) for k in extra_keys),
                *(raw_dtypes.get(name) for name in raw_names),
                *(None for _ in sent),
            ),
        )


def prepare_enriched(
    request: InferRequest,
    feature_view: Any,
    signature: ModelSignature,
    *,
    allow_missing: bool,
    plan: EnrichPlan | None = None,
) -> PreparedRequest:
    """Look up the online features of the request's primary keys (in a worker thread unless the
    online store reads in process, see ``FeatureViewServing.reads_in_process``).

    ``plan`` is :meth:`EnrichPlan.of` ``(feature_view, signature)``, made once per loaded model.

    Raises:
        ValidationError: a key column is missing or an input is not a key or feature.
        NotFoundError: a key has no features in the online store (the message names the key).
    """

    if plan is None:
        plan = EnrichPlan.of(feature_view, signature)
    keys = plan.keys
    columns = plan.columns
    unknown = [inp.name for inp in request.inputs if inp.name not in plan.allowed]
    if unknown:
        fields = list(plan.fields)
        needs = f" and the request field(s) {fields}" if fields else ""
        raise ValidationError(
            f"unknown input(s) {unknown}; this deployment takes the key column(s) {list(keys)}{needs} "
            f"plus optionally passed features from {[c for c in plan.raw_names if c not in fields][:20]}"
        )
    given = {inp.name: inp for inp in request.inputs}
    missing_keys = [k for k in keys if k not in given]
    if missing_keys:
        raise ValidationError(
            f"missing key input(s) {missing_keys}; enriched deployments need the primary key"
        )
    spec_types = plan.spec_types
    for inp in request.inputs:
        if inp.name in spec_types:
            _check_datatype(inp, spec_types[inp.name], plan.allow_widening)
            _check_missing(inp, allow_missing)
        elif inp.name in keys:
            if inp.datatype not in ("BYTES", *NUMERIC) or inp.datatype.startswith("FP"):
                raise ValidationError(
                    f"key input {inp.name!r} must be an integer or BYTES (string), got {inp.datatype}"
                )
        elif inp.name in columns:  # a request field or a joined column, as stored
            _check_column_datatype(inp, columns[inp.name])
            _check_missing(inp, allow_missing)
        else:  # a raw feature the transformations turn into other model inputs
            _check_missing(inp, allow_missing)
    n = _row_count(request.inputs)
    key_columns = {k: given[k].data.reshape(-1).tolist() for k in keys}
    passed_names = [name for name in given if name not in keys]
    cols: dict[str, list[Any]] = {}
    if passed_names:
        cols = {name: given[name].data.reshape(-1).tolist() for name in passed_names}
    return _look_up(feature_view, plan, n, key_columns, cols, allow_missing)


def _look_up(
    feature_view: Any,
    plan: EnrichPlan,
    n: int,
    key_columns: dict[str, list[Any]],
    cols: dict[str, list[Any]],
    allow_missing: bool,
) -> PreparedRequest:
    """The model inputs of ``n`` checked rows: the key columns' online features, with the passed
    columns ``cols`` applied."""
    import numpy as np

    keys = plan.keys
    entries = [{k: key_columns[k][i] for k in keys} for i in range(n)]
    passed = [{name: cols[name][i] for name in cols} for i in range(n)] if cols else None
    try:
        served = feature_view.lookup(entries, passed_features=passed)
    except NotFoundError as exc:
        raise NotFoundError(f"feature lookup failed: {exc.message}") from None
    matrix = np.asarray(served.matrix)
    if matrix.ndim != 2 or matrix.shape[0] != n:
        raise NotFoundError(f"feature lookup returned {matrix.shape} for {n} key(s) {entries[:5]}")
    if matrix.dtype.kind in "iub":
        matrix = matrix.astype(np.float64)
    elif matrix.dtype.kind == "O":
        with contextlib.suppress(TypeError, ValueError):
            matrix = matrix.astype(np.float64)
    if matrix.dtype.kind == "f" and not allow_missing and bool(np.isnan(matrix).any()):
        rows = sorted({int(i) for i in np.argwhere(np.isnan(matrix))[:, 0]})
        raise NotFoundError(f"no complete features for key(s) {[entries[i] for i in rows[:5]]}")
    logged = LoggedInputs(
        names=plan.logged_names,
        columns=[*(key_columns[k] for k in plan.extra_keys), *served.raw, *(cols[f] for f in plan.sent)],
        dtypes=plan.logged_dtypes,
    )
    return PreparedRequest(matrix, n, logged)


_FAST_KEYS = frozenset({"id", "inputs", "parameters"})
_FAST_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data"})


_INT64 = 2**63


def fast_enriched(
    payload: Any, plan: EnrichPlan, feature_view: Any, allow_missing: bool
) -> PreparedRequest | None:
    """The inputs of a well-formed enriched request without building per-input objects, or None
    to take the careful path (:func:`prepare_enriched`, which names any problem).

    Applies to requests sending exactly the key column(s), as flat lists of equal length of
    INT64 integers or BYTES strings, with no parameters and no requested outputs."""
    if type(payload) is not dict or not _FAST_KEYS.issuperset(payload) or payload.get("parameters"):
        return None
    rid = payload.get("id")
    inputs = payload.get("inputs")
    keys = plan.keys
    if (rid is not None and type(rid) is not str) or type(inputs) is not list or len(inputs) != len(keys):
        return None
    columns: dict[str, list[Any]] = {}
    n = -1
    for item in inputs:
        if type(item) is not dict or not _FAST_INPUT_KEYS.issuperset(item):
            return None
        name, data, datatype = item.get("name"), item.get("data"), item.get("datatype")
        if type(name) is not str or name not in keys or name in columns or type(data) is not list or not data:
            return None
        if datatype == "INT64":
            if not all(type(v) is int and -_INT64 <= v < _INT64 for v in data):
                return None
        elif datatype != "BYTES" or not all(type(v) is str for v in data):
            return None
        if item.get("shape") not in ([len(data)], [len(data), 1]) or (n != -1 and len(data) != n):
            return None
        n = len(data)
        columns[name] = data
    return _look_up(feature_view, plan, n, columns, {}, allow_missing)


def fast_plain(payload: Any, order: dict[str, int], datatypes: list[str]) -> PreparedRequest | None:
    """The input matrix of a well-formed request in one numpy call, or None to take the careful path.

    Applies to plain deployments whose inputs are all numeric, for requests with exactly the
    signature's inputs as flat columns of equal length, each of its signature datatype (FP64 or
    INT64), with finite values, no parameters and no requested outputs. Anything else (including every kind of bad input) returns None, and
    :func:`prepare_plain` validates it and names the problem.
    """
    import numpy as np

    if type(payload) is not dict or not _FAST_KEYS.issuperset(payload) or payload.get("parameters"):
        return None
    rid = payload.get("id")
    if rid is not None and type(rid) is not str:
        return None
    inputs = payload.get("inputs")
    k = len(order)
    if type(inputs) is not list or len(inputs) != k:
        return None
    slots: list[Any] = [None] * k
    n = -1
    for item in inputs:
        if type(item) is not dict or not _FAST_INPUT_KEYS.issuperset(item):
            return None
        name = item.get("name")
        if type(name) is not str:
            return None
        j = order.get(name)
        data = item.get("data")
        if j is None or slots[j] is not None or item.get("datatype") != datatypes[j]:
            return None
        if type(data) is not list or not data or type(data[0]) is list:
            return None
        shape = item.get("shape")
        if shape != [len(data)] and shape != [len(data), 1]:
            return None
        if n == -1:
            n = len(data)
        elif len(data) != n:
            return None
        slots[j] = data
    try:
        big = np.array([v for data in slots for v in data])
    except (ValueError, OverflowError, TypeError):
        return None
    if big.dtype.kind not in "fi" or big.size != n * k:
        return None
    if big.dtype.kind == "f" and not bool(np.isfinite(big).all()):
        return None
    return PreparedRequest(np.ascontiguousarray(big.reshape(k, n).T, dtype=np.float64), n)


def build_response(
    model_name: str,
    model_version: int,
    request_id: str,
    outputs: dict[str, np.ndarray],
    requested: list[str] | None,
    variant: str | None = None,
) -> dict[str, Any]:
    """The V2 inference response body (numpy data serialized by orjson); ``parameters`` names the
    variant that answered when the deployment splits its traffic."""
    from fti.serving.protocol import encode_output

    names = requested if requested is not None else list(outputs)
    return {
        "model_name": model_name,
        "model_version": str(model_version),
        "id": request_id,
        "parameters": {} if variant is None else {"variant": variant},
        "outputs": [encode_output(name, outputs[name]) for name in names],
    }


def check_requested_outputs(requested: list[str] | None, signature: ModelSignature) -> None:
    if requested is None:
        return
    known = [s.name for s in signature.outputs]
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ValidationError(f"unknown output(s) {unknown}; the model's outputs are {known}")
