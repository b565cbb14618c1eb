"""Open Inference Protocol (KServe V2) REST payloads: parsing, validation and response encoding.

The hot path parses the body with orjson and validates it by hand into :class:`InferRequest`
(numpy arrays per input), because error messages must name the input and what is wrong with it.
The pydantic models in :mod:`fti.serving.openapi` describe the same payloads for the OpenAPI
document.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from fti._names import MAX_VERSION as MAX_VERSION
from fti.errors import ValidationError

if TYPE_CHECKING:
    import numpy as np

# OIP datatype -> numpy dtype name ("object" for BYTES)
DATATYPES: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_INT_RANGES: dict[str, tuple[int, int]] = {
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
}
NUMERIC = frozenset(DATATYPES) - {"BYTES", "BOOL"}
_MAX_ELEMENTS = 10_000_000


@dataclass(frozen=True)
class InferInput:
    """One validated request input: ``data`` is a numpy array of ``shape``.

    Float inputs keep JSON ``null`` (and ``NaN`` from lenient clients) as NaN; ``has_missing``
    says whether any is present so the dataplane can refuse them where the model forbids it.
    """

    name: str
    shape: tuple[int, ...]
    datatype: str
    data: np.ndarray
    has_missing: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferRequest:
    """A validated inference request."""

    id: str | None
    inputs: list[InferInput]
    outputs: list[str] | None
    parameters: dict[str, Any]
    output_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The ``parameters`` of each requested output (``binary_data``), by output name."""


MAX_DEPTH = 1024
"""The deepest JSON nesting a request may have (orjson's own limit)."""


def as_version(value: Any) -> int | None:
    """``value`` (an int, or a string of ASCII digits: a path segment or a load/unload
    parameter) as a model version, or None if it is not one: ``str.isdigit`` accepts "²" and ``int`` does not, and a version beyond the catalog's
    range (:data:`~fti._names.MAX_VERSION`) cannot exist."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_VERSION)):
            return None
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        return None
    return value


def loads(body: bytes) -> Any:
    """Parse a JSON body; ``NaN``/``Infinity`` literals (Python's json) are accepted here and
    rejected later by the validation that knows whether the model allows them.

    Raises:
        ValidationError: not JSON, or nested deeper than :data:`MAX_DEPTH` levels.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise _too_deep() from None
        try:
            return json.loads(body)
        except RecursionError:
            raise _too_deep() from None
        except (ValueError, UnicodeDecodeError):
            raise ValidationError(f"request body is not valid JSON: {exc}") from None


def _too_deep() -> ValidationError:
    return ValidationError(
        f"request body is nested deeper than {MAX_DEPTH} levels; send flat or shallow JSON"
    )


def check_fields(payload: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """Refuse keys of ``payload`` that its schema does not define (``additionalProperties:
    false`` in the OpenAPI document): a misspelt field is an error, not silently ignored."""
    unknown = [key for key in payload if key not in allowed]
    if unknown:
        raise ValidationError(
            f"unknown field(s) {sorted(map(str, unknown))} in {where}; allowed: {', '.join(allowed)}"
        )


def parse_infer_request(payload: Any, binary: bytes | None = None) -> InferRequest:
    """Validate a decoded inference request body.

    Args:
        payload: The decoded JSON.
        binary: The raw tensors that followed the JSON in a binary request (see
            :mod:`fti.serving.binary`), or None for a JSON request.

    Raises:
        ValidationError: naming the offending field or input and what is wrong with it.
    """
    if not isinstance(payload, dict):
        raise ValidationError(f"request body must be a JSON object, got {type(payload).__name__}")
    check_fields(payload, ("id", "inputs", "outputs", "parameters"), "the request")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ValidationError(f"'id' must be a string, got {short_repr(request_id)}")
    params = _parameters(payload.get("parameters"), "request")
    raw_inputs = payload.get("inputs")
    if raw_inputs is None:
        raise ValidationError("request has no 'inputs': send a list of {name, shape, datatype, data}")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise ValidationError("'inputs' must be a non-empty list of {name, shape, datatype, data}")
    inputs: list[InferInput] | None = None
    if binary is not None:
        from fti.serving.binary import parse_binary_inputs

        inputs = parse_binary_inputs(raw_inputs, binary)
    else:
        inputs = _fast_inputs(raw_inputs) or [parse_input(item, i) for i, item in enumerate(raw_inputs)]
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValidationError(f"input(s) {dupes} given more than once")
    outputs: list[str] | None = None
    output_params: dict[str, dict[str, Any]] = {}
    raw_outputs = payload.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise ValidationError("'outputs' must be a list of {name}")
        outputs = []
        for i, item in enumerate(raw_outputs):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ValidationError(f"outputs[{i}] must be an object with a string 'name'")
            check_fields(item, ("name", "parameters"), f"outputs[{i}]")
            output_params[item["name"]] = _parameters(item.get("parameters"), f"output {item['name']!r}")
            outputs.append(item["name"])
    return InferRequest(request_id, inputs, outputs, params, output_params)


_FAST = {"FP64": "f", "FP32": "f", "INT64": "i", "INT32": "i"}
_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})


def _fast_inputs(raw_inputs: list[Any]) -> list[InferInput] | None:
    """Well-formed flat numeric inputs converted with one numpy call per datatype.

    Returns None whenever anything is unusual (nested data, nulls, NaN, other datatypes, any
    error): :func:`parse_input` then checks each input and names the problem.
    """
    import numpy as np

    groups: dict[str, list[tuple[str, list[int], list[Any]]]] = {}
    for item in raw_inputs:
        if type(item) is not dict or not _KEYS.issuperset(item) or item.get("parameters"):
            return None
        name, shape, datatype, data = (
            item.get("name"),
            item.get("shape"),
            item.get("datatype"),
            item.get("data"),
        )
        if type(name) is not str or not name or type(datatype) is not str or datatype not in _FAST:
            return None
        if type(data) is not list or not data:
            return None
        if (
            type(shape) is not list
            or not shape
            or not all(type(d) is int and 0 <= d <= _MAX_ELEMENTS for d in shape)
        ):
            return None
        if math.prod(shape) != len(data) or type(data[0]) is list:
            return None
        groups.setdefault(datatype, []).append((name, shape, data))
    converted: dict[str, InferInput] = {}
    for datatype, members in groups.items():
        try:
            big = np.array([v for _, _, data in members for v in data])
        except (ValueError, OverflowError):
            return None
        kind = big.dtype.kind
        if datatype.startswith("FP"):
            if kind not in "fi" or (kind == "f" and not bool(np.isfinite(big).all())):
                return None
            if datatype == "FP32" and big.size and float(np.abs(big).max()) > float(np.finfo(np.float32).max):
                return None
        else:
            if kind != "i":
                return None
            low, high = _INT_RANGES[datatype]
            if datatype != "INT64" and (int(big.min()) < low or int(big.max()) > high):
                return None
        big = big.astype(DATATYPES[datatype], copy=False)
        offset = 0
        for name, shape, data in members:
            end = offset + len(data)
            converted[name] = InferInput(name, tuple(shape), datatype, big[offset:end].reshape(shape))
            offset = end
    if len(converted) != len(raw_inputs):  # duplicate names: let the slow path report them
        return None
    return [converted[item["name"]] for item in raw_inputs]


def parse_input(item: Any, index: int) -> InferInput:
    """Validate one element of ``inputs`` and convert its data to a numpy array."""

    if not isinstance(item, dict):
        raise ValidationError(f"inputs[{index}] must be an object with name, shape, datatype and data")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError(f"inputs[{index}] has no string 'name'")
    check_fields(item, ("name", "shape", "datatype", "data", "parameters"), f"input {name!r}")
    for key in ("shape", "datatype", "data"):
        if key not in item:
            raise ValidationError(f"input {name!r} has no {key!r}")
    shape = item["shape"]
    check_shape(name, shape)
    datatype = item["datatype"]
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise ValidationError(
            f"input {name!r}: unknown datatype {short_repr(datatype)}; use one of {', '.join(DATATYPES)}"
        )
    size = math.prod(shape)
    params = _parameters(item.get("parameters"), f"input {name!r}")
    data = item["data"]
    if not isinstance(data, list):
        data = [data]
    array, missing = _to_array(name, datatype, data)
    if array.size != size:
        raise ValidationError(f"input {name!r}: shape {shape} needs {size} values but data has {array.size}")
    return InferInput(name, tuple(shape), datatype, array.reshape(shape), missing, params)


def check_shape(name: str, shape: Any) -> tuple[int, ...]:
    """``shape`` of input ``name`` as a tuple: a non-empty list of sizes, at most
    :data:`_MAX_ELEMENTS` elements in all (a ``ValidationError`` naming the input otherwise)."""
    if (
        not isinstance(shape, list | tuple)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= _MAX_ELEMENTS for d in shape)
    ):
        raise ValidationError(
            f"input {name!r}: 'shape' must be a non-empty list of integers from 0 to {_MAX_ELEMENTS}, "
            f"got {short_repr(shape)}"
        )
    if math.prod(shape) > _MAX_ELEMENTS:
        raise ValidationError(f"input {name!r}: shape {list(shape)} has more than {_MAX_ELEMENTS} elements")
    return tuple(shape)


def _to_array(name: str, datatype: str, data: list[Any]) -> tuple[np.ndarray, bool]:
    import numpy as np

    if datatype == "BYTES":
        flat = _flatten(data)
        for i, v in enumerate(flat):
            if not isinstance(v, str):
                raise ValidationError(
                    f"input {name!r}: BYTES data must be strings, got {type(v).__name__} at position {i}"
                )
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out, False
    try:
        array = np.asarray(data)
    except (ValueError, OverflowError):  # ragged nesting: the size check reports the shape
        try:
            array = np.asarray(_flatten(data))
        except (ValueError, OverflowError):
            array = np.asarray(_flatten(data), dtype=object)
    kind = array.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            raise ValidationError(
                f"input {name!r}: datatype BOOL needs true/false values, got {short_repr(_sample(data))}"
            )
        return array, False
    if datatype.startswith("FP"):
        missing = False
        if kind == "O":  # nulls (missing values) or junk
            flat = _flatten(data)
            for v in flat:
                if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                    raise ValidationError(
                        f"input {name!r}: datatype {datatype} needs numbers, got {short_repr(v)}"
                    )
            try:
                array = np.asarray([math.nan if v is None else v for v in flat], dtype=np.float64)
            except OverflowError:  # an integer of hundreds of digits
                raise _out_of_range(name, datatype) from None
            kind = "f"
        if kind not in "fiu":
            raise ValidationError(
                f"input {name!r}: datatype {datatype} needs numbers, got {short_repr(_sample(data))}"
            )
        if kind == "f":
            missing = bool(np.isnan(array).any())
            if bool(np.isinf(array).any()):
                raise ValidationError(f"input {name!r}: infinite values are not allowed")
        if datatype != "FP64" and array.size:
            limit = float(np.finfo(DATATYPES[datatype]).max)
            values = array.astype(np.float64)
            values = values[~np.isnan(values)]
            if values.size and float(np.abs(values).max()) > limit:
                raise _out_of_range(name, datatype)
        return array.astype(DATATYPES[datatype], copy=False), missing
    low, high = _INT_RANGES[datatype]
    if kind not in "iu":  # big unsigned values come back as objects or floats: check them one by one
        flat = _flatten(data)
        for v in flat:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValidationError(
                    f"input {name!r}: datatype {datatype} needs integers, got {short_repr(v)}"
                )
            if not low <= v <= high:
                raise ValidationError(f"input {name!r}: values out of range for {datatype} ({low}..{high})")
        return np.array(flat, dtype=DATATYPES[datatype]), False
    if array.size and (int(array.min()) < low or int(array.max()) > high):
        raise ValidationError(f"input {name!r}: values out of range for {datatype} ({low}..{high})")
    return array.astype(DATATYPES[datatype], copy=False), False


def _out_of_range(name: str, datatype: str) -> ValidationError:
    import numpy as np

    limit = float(np.finfo(DATATYPES[datatype]).max)
    return ValidationError(f"input {name!r}: values out of range for {datatype} (|x| <= {limit:g})")


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a client's value in an error message)."""
    try:
        text = repr(value)
    except RecursionError:
        return "a deeply nested value"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _sample(data: list[Any]) -> Any:
    flat = _flatten(data)
    for v in flat:
        if isinstance(v, str | dict | bool) or v is None:
            return v
    return flat[0] if flat else None


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"'parameters' of the {where} must be an object, got {short_repr(value)}")
    return value


def datatype_of(array: np.ndarray) -> str:
    """The OIP datatype of a numpy array (object and string arrays are BYTES)."""
    kind = array.dtype.kind
    if kind in "OUS":
        return "BYTES"
    if kind == "b":
        return "BOOL"
    name = array.dtype.name
    for oip, np_name in DATATYPES.items():
        if np_name == name:
            return oip
    raise ValidationError(f"cannot encode an array of dtype {name} in the Open Inference Protocol")


def encode_output(name: str, array: np.ndarray) -> dict[str, Any]:
    """One response output; the data stays a numpy array for orjson to serialize fast."""
    import numpy as np

    datatype = datatype_of(array)
    if datatype == "BYTES":
        data: Any = [v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel().tolist()]
    elif array.dtype == np.float16:
        data = np.ascontiguousarray(array.astype(np.float32).ravel())
    else:
        data = np.ascontiguousarray(array.ravel())
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def dumps(payload: Any) -> bytes:
    """Serialize a response body (numpy arrays included)."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY, default=_default)


def _default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def parameter_version(payload: dict[str, Any]) -> int | None:
    """The version of a load/unload request body ``{"parameters": {"version": 2}}``."""
    check_fields(payload, ("parameters",), "the repository request")
    params = payload.get("parameters") or {}
    if not isinstance(params, dict):
        raise ValidationError("'parameters' must be an object")
    raw = params.get("version")
    if raw is None:
        return None
    version = as_version(raw)
    if version is None:
        shown = short_repr(raw)
        raise ValidationError(
            f"parameters.version must be an integer from 1 to {MAX_VERSION} (or such a string), got {shown}"
        )
    return version
