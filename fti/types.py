"""Value types shared across fti: feature declarations and the dtype vocabulary.

Feature dtypes are named with a small vocabulary that maps one-to-one onto Arrow types, so the
offline store (Delta), the online stores and the query engine (DuckDB) agree on every column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fti.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

DTYPES: tuple[str, ...] = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "float32",
    "float64",
    "string",
    "binary",
    "date",
    "timestamp",
)
"""Supported feature dtypes. ``timestamp`` is always microseconds, tz-aware UTC."""


@dataclass(frozen=True)
class Feature:
    """A feature (column) of a feature group: a name and a dtype from :data:`DTYPES`."""

    name: str
    dtype: str
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValidationError(f"feature name must be a non-empty string, got {self.name!r}")
        if self.dtype not in DTYPES:
            raise ValidationError(
                f"feature {self.name!r} has unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}"
            )

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "dtype": self.dtype, "description": self.description}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Feature:
        return cls(data["name"], data["dtype"], data.get("description", ""))


def arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type of a feature dtype."""
    import pyarrow as pa

    table = {
        "bool": pa.bool_(),
        "int8": pa.int8(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "string": pa.string(),
        "binary": pa.binary(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return table[dtype]


def dtype_of(arrow: pa.DataType) -> str | None:
    """The feature dtype for an Arrow type, or None when fti cannot store it.

    Naive timestamps map to None as well: the caller reports them with a fix.
    """
    import pyarrow as pa

    if pa.types.is_dictionary(arrow):
        arrow = arrow.value_type
    if pa.types.is_boolean(arrow):
        return "bool"
    if pa.types.is_integer(arrow):
        width = arrow.bit_width
        if pa.types.is_unsigned_integer(arrow):
            width = min(width * 2, 64)
        return f"int{max(width, 8)}"
    if pa.types.is_float16(arrow) or pa.types.is_float32(arrow):
        return "float32"
    if pa.types.is_float64(arrow) or pa.types.is_decimal(arrow):
        return "float64"
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow):
        return "string"
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow) or pa.types.is_binary_view(arrow):
        return "binary"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_timestamp(arrow) and arrow.tz is not None:
        return "timestamp"
    return None
