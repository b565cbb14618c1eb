"""Typed values from JSON and from stream messages: the one place that parses what clients send.

Pushed rows arrive as JSON (``POST /v1/feature-groups/{name}/push``), stream events as Redis
Stream fields (byte strings). Both become Arrow columns of fti's dtypes here, strictly: a number
is never read from a string in JSON, a timestamp must carry its UTC offset (naive times are
refused, as everywhere in fti), and every problem names the column, the row and the fix.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from fti.errors import SchemaError, ValidationError

_INTS = ("int8", "int16", "int32", "int64")
_FLOATS = ("float32", "float64")


class ValueProblem(ValueError):
    """One value that cannot be read as its dtype (the message says what was expected)."""


def parse_time(value: str) -> datetime:
    """An ISO 8601 time with a UTC offset (``2024-01-01T10:00:00Z``, ``...+02:00``) as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueProblem(f"expected an ISO 8601 time such as 2024-01-01T10:00:00Z, got {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueProblem(f"{value!r} is a naive time: give its UTC offset, e.g. {value}Z or {value}+00:00")
    return parsed.astimezone(UTC)


def _json_converter(dtype: str) -> Callable[[Any], Any]:
    def integer(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueProblem(f"expected an integer, got {v!r}")
        return v

    def number(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueProblem(f"expected a number, got {v!r}")
        return float(v)

    def text(v: Any) -> str:
        if not isinstance(v, str):
            raise ValueProblem(f"expected a string, got {v!r}")
        return v

    def boolean(v: Any) -> bool:
        if not isinstance(v, bool):
            raise ValueProblem(f"expected true or false, got {v!r}")
        return v

    def timestamp(v: Any) -> datetime:
        if not isinstance(v, str):
            raise ValueProblem(f"expected an ISO 8601 time string such as 2024-01-01T10:00:00Z, got {v!r}")
        return parse_time(v)

    def day(v: Any) -> date:
        try:
            return date.fromisoformat(text(v))
        except ValueError:
            raise ValueProblem(f"expected a date such as 2024-01-01, got {v!r}") from None

    def binary(v: Any) -> bytes:
        try:
            return base64.b64decode(text(v), validate=True)
        except binascii.Error:
            raise ValueProblem(f"expected base64, got {v!r}") from None

    if dtype in _INTS:
        return integer
    table: dict[str, Callable[[Any], Any]] = {
        "float32": number,
        "float64": number,
        "string": text,
        "bool": boolean,
        "timestamp": timestamp,
        "date": day,
        "binary": binary,
    }
    return table[dtype]


def _text_converter(dtype: str) -> Callable[[str], Any]:
    """Parse a stream field (text) as ``dtype``."""

    def integer(v: str) -> int:
        try:
            return int(v)
        except ValueError:
            raise ValueProblem(f"expected an integer, got {v!r}") from None

    def number(v: str) -> float:
        try:
            out = float(v)
        except ValueError:
            raise ValueProblem(f"expected a number, got {v!r}") from None
        if not math.isfinite(out):
            raise ValueProblem(f"expected a finite number, got {v!r}")
        return out

    def boolean(v: str) -> bool:
        lowered = v.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise ValueProblem(f"expected true/false, got {v!r}")

    def day(v: str) -> date:
        try:
            return date.fromisoformat(v)
        except ValueError:
            raise ValueProblem(f"expected a date such as 2024-01-01, got {v!r}") from None

    if dtype in _INTS:
        return integer
    table: dict[str, Callable[[str], Any]] = {
        "float32": number,
        "float64": number,
        "string": str,
        "bool": boolean,
        "timestamp": parse_time,
        "date": day,
        "binary": lambda v: v.encode(),
    }
    return table[dtype]


def json_converters(dtypes: Mapping[str, str]) -> dict[str, Callable[[Any], Any]]:
    return {name: _json_converter(dtype) for name, dtype in dtypes.items()}


def text_converters(dtypes: Mapping[str, str]) -> dict[str, Callable[[str], Any]]:
    return {name: _text_converter(dtype) for name, dtype in dtypes.items()}


def table_from_json(payload: Any, dtypes: Mapping[str, str], *, what: str) -> Any:
    """The Arrow table of a push body: ``{"rows": [{col: value}, ...]}`` or ``{"columns": {col:
    [values]}}``, each value read as the dtype of its column (unknown columns keep their JSON
    values, for the schema check to name them). Raises SchemaError/ValidationError naming the
    column and row."""
    import pyarrow as pa

    from fti.types import arrow_type

    if not isinstance(payload, dict):
        raise ValidationError(f"{what}: the body must be a JSON object with 'rows' or 'columns'")
    unknown = sorted(set(payload) - {"rows", "columns", "version"})
    if unknown or ("rows" in payload) == ("columns" in payload):
        raise ValidationError(
            f"{what}: the body must have exactly one of 'rows' (a list of objects) or 'columns' (an "
            f"object of equally long lists)" + (f"; unknown field(s) {unknown}" if unknown else "")
        )
    columns: dict[str, list[Any]]
    if "rows" in payload:
        rows = payload["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValidationError(f"{what}: 'rows' must be a list of objects, one per row")
        names = list(dict.fromkeys(k for r in rows for k in r))
        columns = {n: [r.get(n) for r in rows] for n in names}
    else:
        columns = payload["columns"]
        if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
            raise ValidationError(f"{what}: 'columns' must be an object of lists, one per column")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValidationError(f"{what}: the 'columns' lists have different lengths {sorted(lengths)}")
    converters = json_converters({n: dtypes[n] for n in columns if n in dtypes})
    arrays = []
    for name, values in columns.items():
        convert = converters.get(name)
        if convert is None:
            arrays.append(pa.array([None] * len(values)))  # reported as unexpected by the schema check
            continue
        out: list[Any] = []
        for row, value in enumerate(values):
            try:
                out.append(None if value is None else convert(value))
            except ValueProblem as exc:
                raise SchemaError(f"{what}: column {name!r}, row {row}: {exc}") from None
        arrays.append(pa.array(out, arrow_type(dtypes[name])))
    return pa.table(arrays, names=list(columns))
