"""Watermark values: the typed, exact value of a cursor column, stored in the catalog as JSON.

A watermark keeps the Arrow type it was read with, so the next read compares against exactly the
same value: timestamps as integer ticks in their unit and zone (a nanosecond timestamp survives
the round trip), dates as ISO days, decimals as text, integers, floats and strings as themselves.
Columns of other types (booleans, binary, nested) cannot be watermarks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

KINDS = ("int", "float", "decimal", "string", "date", "timestamp")


@dataclass(frozen=True)
class Watermark:
    """One cursor value with its type."""

    kind: str
    value: Any
    """JSON-native: int (also timestamp ticks), float, or str (decimal, string, ISO date)."""
    unit: str | None = None
    """Timestamp unit: s, ms, us or ns."""
    tz: str | None = None
    """Timestamp zone; None for naive timestamps."""

    @classmethod
    def from_scalar(cls, scalar: pa.Scalar, column: str) -> Watermark:
        """The watermark of a non-null Arrow scalar of column ``column``."""
        import pyarrow as pa
        import pyarrow.types as t

        kind = watermark_kind(scalar.type, column)
        if kind == "timestamp":
            unit, tz = scalar.type.unit, scalar.type.tz
            return cls(kind, int(scalar.cast(pa.int64()).as_py()), unit, tz)
        if kind == "date":
            return cls(kind, scalar.cast(pa.date32()).as_py().isoformat())
        if kind == "decimal":
            return cls(kind, str(scalar.as_py()))
        if kind == "int":
            return cls(kind, int(scalar.as_py()))
        if kind == "float":
            return cls(kind, float(scalar.as_py()))
        assert t.is_string(scalar.type) or t.is_large_string(scalar.type) or kind == "string"
        return cls(kind, str(scalar.as_py()))

    def to_scalar(self) -> pa.Scalar:
        """The value as an Arrow scalar of its original type (for comparisons and binding)."""
        import pyarrow as pa

        if self.kind == "timestamp":
            return pa.scalar(int(self.value), pa.int64()).cast(pa.timestamp(self.unit or "us", self.tz))
        if self.kind == "date":
            return pa.scalar(dt.date.fromisoformat(self.value), pa.date32())
        if self.kind == "decimal":
            return pa.scalar(Decimal(self.value))
        if self.kind == "int":
            return pa.scalar(int(self.value), pa.int64())
        if self.kind == "float":
            return pa.scalar(float(self.value), pa.float64())
        return pa.scalar(str(self.value), pa.string())

    def to_python(self) -> Any:
        """The value as the Python object a DB-API driver binds (nanoseconds are truncated to µs)."""
        if self.kind == "timestamp":
            per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[self.unit or "us"]
            seconds, rest = divmod(int(self.value), per_second)
            micros = rest * 1_000_000 // per_second
            value = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                seconds=seconds, microseconds=micros
            )
            return value if self.tz is not None else value.replace(tzinfo=None)
        if self.kind == "date":
            return dt.date.fromisoformat(self.value)
        if self.kind == "decimal":
            return Decimal(self.value)
        return self.value

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "value": self.value}
        if self.kind == "timestamp":
            out |= {"unit": self.unit, "tz": self.tz}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Watermark:
        return cls(data["kind"], data["value"], data.get("unit"), data.get("tz"))

    def __str__(self) -> str:
        value = self.to_python()
        return value.isoformat() if isinstance(value, dt.date) else str(value)


def watermark_kind(arrow_type: pa.DataType, column: str) -> str:
    """The watermark kind of an Arrow type; ValidationError for types that cannot be one."""
    import pyarrow.types as t

    if t.is_timestamp(arrow_type):
        return "timestamp"
    if t.is_date(arrow_type):
        return "date"
    if t.is_decimal(arrow_type):
        return "decimal"
    if t.is_integer(arrow_type):
        return "int"
    if t.is_floating(arrow_type):
        return "float"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_string_view(arrow_type):
        return "string"
    raise ValidationError(
        f"cursor column {column!r} has type {arrow_type}, which cannot be a watermark: use a "
        "timestamp, date, integer, decimal, float or string column that grows with new rows"
    )
