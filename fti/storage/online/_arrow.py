"""Arrow <-> Python row conversion shared by the online stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Column kinds the stores know how to round-trip.
INT, FLOAT, STR, BOOL, TS, BYTES, JSON = "int", "float", "str", "bool", "ts", "bytes", "json"


def column_kind(dtype: pa.DataType) -> str:
    if pa.types.is_boolean(dtype):
        return BOOL
    if pa.types.is_integer(dtype):
        return INT
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return FLOAT
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return STR
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return TS
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return BYTES
    return JSON


def column_values(column: pa.ChunkedArray | pa.Array, kind: str) -> list[Any]:
    """Storage-ready Python values: timestamps as int microseconds, bools as 0/1."""
    if kind == TS:
        if pa.types.is_date(column.type):
            column = pc.cast(column, pa.timestamp("us"))
        return list(pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64()).to_pylist())
    if kind == BOOL:
        return list(pc.cast(column, pa.int8()).to_pylist())
    if kind in (INT, FLOAT) and column.null_count == 0:
        return column.to_numpy().tolist()  # type: ignore[no-any-return]
    if kind == JSON:
        import orjson

        return [None if v is None else orjson.dumps(v).decode() for v in column.to_pylist()]
    return column.to_pylist()  # type: ignore[no-any-return]


def iter_rows(table: pa.Table, kinds: dict[str, str]) -> Iterator[tuple[Any, ...]]:
    columns = [column_values(table.column(name), kinds[name]) for name in table.column_names]
    return zip(*columns, strict=True)


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def restore(value: Any, kind: str) -> Any:
    """Undo the storage conversion of one value."""
    if value is None:
        return None
    if kind == TS:
        return from_micros(value)
    if kind == BOOL:
        return bool(value)
    if kind == JSON:
        import orjson

        return orjson.loads(value)
    return value
