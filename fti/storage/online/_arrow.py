"""Arrow <-> Python conversions shared by the online stores: column kinds, storage values, keys.

Every online store keeps values in a small set of *kinds* and converts them the same way, so the
stores return identical Python values: timestamps are int microseconds since the epoch (restored
as tz-aware UTC datetimes), dates are int days (restored as ``datetime.date``), bools are 0/1.

Arrow is imported by the functions that take Arrow data (writes), not with the module: reading
rows and applied versions (a model server's connect, its lookups) does not need it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DATE = date(1970, 1, 1)
_MICRO = timedelta(microseconds=1)

# Column kinds the stores know how to round-trip.
INT, FLOAT, STR, BOOL, TS, DATE, BYTES, JSON = "int", "float", "str", "bool", "ts", "date", "bytes", "json"
EVENT_TIME_KINDS = (TS, DATE, INT)
EVENT_TIME_LIMIT = 1 << 62  # event times (int, or microseconds) must lie within +/- this


def column_kind(dtype: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        return column_kind(dtype.value_type)
    if pa.types.is_boolean(dtype):
        return BOOL
    if pa.types.is_integer(dtype):
        return INT
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return FLOAT
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return STR
    if pa.types.is_timestamp(dtype):
        return TS
    if pa.types.is_date(dtype):
        return DATE
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_fixed_size_binary(dtype):
        return BYTES
    return JSON


def column_values(column: pa.ChunkedArray | pa.Array, kind: str) -> list[Any]:
    """Storage-ready Python values: timestamps as int microseconds, dates as int days, bools as 0/1."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if kind == TS:
        if pa.types.is_date(column.type):
            column = pc.cast(column, pa.timestamp("us"))
        return list(pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64()).to_pylist())
    if kind == DATE:
        if pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.date32())
        return list(pc.cast(pc.cast(column, pa.date32()), pa.int32()).to_pylist())
    if kind == BOOL:
        return list(pc.cast(column, pa.int8()).to_pylist())
    if kind == FLOAT and pa.types.is_decimal(column.type):
        column = pc.cast(column, pa.float64())
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


def restorer(kind: str) -> Any:
    """A one-argument function undoing the storage conversion of ``kind`` (values are not None)."""
    if kind == TS:
        return from_micros
    if kind == DATE:
        return lambda value: EPOCH_DATE + timedelta(days=value)
    if kind == BOOL:
        return bool
    if kind == JSON:
        import orjson

        return orjson.loads
    return lambda value: value


def restore(value: Any, kind: str) -> Any:
    """Undo the storage conversion of one value."""
    if value is None:
        return None
    if kind == TS:
        return from_micros(value)
    if kind == DATE:
        return EPOCH_DATE + timedelta(days=value)
    if kind == BOOL:
        return bool(value)
    if kind == JSON:
        import orjson

        return orjson.loads(value)
    return value


def check_rows(rows: Any, key_columns: Sequence[str], event_time: str | None, version: int | None) -> None:
    """Reject a write the stores cannot apply, before anything is written."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise ValidationError(
            f"the applied version must be an int >= 0 (or None for rows only), got {version!r}"
        )
    if not isinstance(rows, pa.Table):
        raise ValidationError(f"online rows must be a pyarrow.Table, got {type(rows).__name__}")
    if isinstance(key_columns, str) or not key_columns:
        raise ValidationError(f"key_columns must be a non-empty list of column names, got {key_columns!r}")
    if len(set(key_columns)) != len(key_columns):
        raise ValidationError(f"key_columns {list(key_columns)} name a column twice")
    names = rows.column_names
    if len(set(names)) != len(names):
        raise ValidationError(f"online rows have duplicate column names: {names}")
    needed = [*key_columns, *([event_time] if event_time is not None else [])]
    missing = [c for c in needed if c not in names]
    if missing:
        raise ValidationError(f"online rows lack key/event-time column(s) {missing} (columns: {names})")
    if event_time is not None and column_kind(rows.schema.field(event_time).type) not in EVENT_TIME_KINDS:
        raise ValidationError(
            f"event time column {event_time!r} has type {rows.schema.field(event_time).type}; "
            "use a timestamp, date or integer column"
        )
    for name in needed:
        nulls = rows.column(name).null_count
        if nulls:
            raise ValidationError(
                f"column {name!r} has {nulls} null value(s); keys and event times need values"
            )
    if event_time is not None and rows.num_rows and column_kind(rows.schema.field(event_time).type) == INT:
        bounds = pc.min_max(rows.column(event_time)).as_py()
        if bounds["min"] < -EVENT_TIME_LIMIT or bounds["max"] >= EVENT_TIME_LIMIT:
            raise ValidationError(
                f"integer event time column {event_time!r} holds values outside +/-2**62 "
                f"(min {bounds['min']}, max {bounds['max']})"
            )


def check_keys(keys: Any) -> None:
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence):
        raise ValidationError(f"keys must be a list of key tuples, e.g. [(1,), (2,)], got {keys!r}")


_MISS = object()


def _key_part(value: Any, kind: str) -> Any:
    """The storage form of one key element, or ``_MISS`` when no stored value of ``kind`` equals it."""
    if value is None:
        return _MISS
    if not isinstance(value, (int, float, str, bytes, date)):
        item = getattr(value, "item", None)  # numpy scalars
        if item is not None:
            value = item()
    if kind == INT:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISS
    if kind == STR:
        return value if isinstance(value, str) else _MISS
    if kind == FLOAT:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else _MISS
    if kind == BOOL:
        return int(value) if isinstance(value, bool) else _MISS
    if kind == TS:
        if not isinstance(value, datetime):
            return _MISS
        if value.tzinfo is None:
            raise ValidationError(
                f"lookup key value {value!r} is a naive datetime; pass a tz-aware one, e.g. "
                "value.replace(tzinfo=datetime.UTC)"
            )
        return (value - EPOCH) // _MICRO
    if kind == DATE:
        return (
            (value - EPOCH_DATE).days
            if isinstance(value, date) and not isinstance(value, datetime)
            else _MISS
        )
    if kind == BYTES:
        return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else _MISS
    import orjson

    return orjson.dumps(value).decode()


def storage_key(key: Sequence[Any], kinds: Sequence[str]) -> tuple[Any, ...] | None:
    """A lookup key in the stored form of the key columns, or None when it can match no stored key.

    Types matter: int ``1`` never matches str ``"1"``, and bool ``True`` never matches int ``1``.
    """
    if type(key) is tuple and len(key) == 1 and len(kinds) == 1:  # the hot path: one int or str key
        value_type, kind = type(key[0]), kinds[0]
        if (value_type is int and kind == INT) or (value_type is str and kind == STR):
            return key
    if isinstance(key, (str, bytes)) or not isinstance(key, Sequence):
        raise ValidationError(f"an online key must be a tuple with one value per key column, got {key!r}")
    if len(key) != len(kinds):
        raise ValidationError(
            f"online key {tuple(key)!r} has {len(key)} value(s); the table has {len(kinds)} key column(s)"
        )
    parts = []
    for value, kind in zip(key, kinds, strict=True):
        part = _key_part(value, kind)
        if part is _MISS:
            return None
        parts.append(part)
    return tuple(parts)


_PLAIN_KEYS = {INT: int, STR: str}


def storage_keys(keys: Sequence[Sequence[Any]], kinds: Sequence[str]) -> list[tuple[Any, ...] | None]:
    """:func:`storage_key` of each key: one pass, without a call per key, for the usual keys (one
    int or str column, given as tuples of the stored type)."""
    plain = _PLAIN_KEYS.get(kinds[0]) if len(kinds) == 1 else None
    if plain is not None and all(type(k) is tuple and len(k) == 1 and type(k[0]) is plain for k in keys):
        return list(keys)  # type: ignore[arg-type]
    return [storage_key(k, kinds) for k in keys]
