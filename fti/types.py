"""Value types shared across fti: feature declarations, the dtype vocabulary, model references.

Feature dtypes are named with a small vocabulary that maps one-to-one onto Arrow types, so the
offline store (Delta), the online stores and the query engine (DuckDB) agree on every column.
A :class:`ModelRef` is the one way a registered model is named: ``"fraud"``, ``"fraud:3"`` or
``"fraud@production"``, everywhere (registry, serving, batch, CLI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fti._names import MAX_VERSION, check_alias, check_name, check_version
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
"""Supported feature dtypes. ``timestamp`` is always microseconds, tz-aware UTC. Embeddings are
``vector[N]``: N float32 values (1 <= N <= 65536), a fixed-size list in Arrow and Delta."""

MAX_VECTOR_DIM = 65536
_VECTOR = re.compile(r"^vector\[([1-9][0-9]{0,4})\]$")


def vector_dim(dtype: str) -> int | None:
    """N of a ``vector[N]`` dtype, else None."""
    match = _VECTOR.match(dtype) if isinstance(dtype, str) else None
    if match is None or int(match.group(1)) > MAX_VECTOR_DIM:
        return None
    return int(match.group(1))


@dataclass(frozen=True)
class Feature:
    """A feature (column) of a feature group: a name and a dtype from :data:`DTYPES`."""

    name: str
    dtype: str
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValidationError(f"feature name must be a non-empty string, got {self.name!r}")
        if self.dtype not in DTYPES and vector_dim(self.dtype) is None:
            raise ValidationError(
                f"feature {self.name!r} has unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)} "
                f"or 'vector[N]' (an embedding of N float32 values, 1 <= N <= {MAX_VECTOR_DIM})"
            )

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "dtype": self.dtype, "description": self.description}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Feature:
        return cls(data["name"], data["dtype"], data.get("description", ""))


def arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type of a feature dtype."""
    import pyarrow as pa

    dim = vector_dim(dtype)
    if dim is not None:
        return pa.list_(pa.float32(), dim)
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
    if pa.types.is_fixed_size_list(arrow) and pa.types.is_floating(arrow.value_type):
        return f"vector[{arrow.list_size}]" if arrow.list_size <= MAX_VECTOR_DIM else None
    return None


_VERSION = re.compile(r"[0-9]+", re.ASCII)
_REF_FORMS = (
    "'name' (latest version), 'name:version' or 'name@alias' (e.g. 'fraud', 'fraud:3', 'fraud@production')"
)


@dataclass(frozen=True)
class ModelRef:
    """A reference to a registered model: its latest version, a pinned version, or an alias.

    ``ModelRef.parse("fraud")`` follows the latest version, ``"fraud:3"`` pins version 3 and
    ``"fraud@production"`` follows whatever version the alias points to. ``str(ref)`` is the text
    form again, and ``ModelRef.parse(str(ref)) == ref``.

    Attributes:
        name: Model name: 1-63 lowercase letters, digits or ``_``.
        version: The pinned version (an integer >= 1), or None.
        alias: The followed alias (1-63 of ``[a-z0-9_-]``), or None; never together with a version.
    """

    name: str
    version: int | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name, "model")
        check_version(self.version, "model", allow_none=True)
        if self.version is not None and self.version > MAX_VERSION:
            raise ValidationError(
                f"invalid model version {self.version}: versions are integers from 1 to {MAX_VERSION}"
            )
        if self.alias is not None:
            check_alias(self.alias)
            if self.version is not None:
                raise ValidationError(
                    f"model reference names both alias {self.alias!r} and version {self.version}; "
                    f"use {self.name}@{self.alias} or {self.name}:{self.version}"
                )

    @classmethod
    def parse(cls, ref: object) -> ModelRef:
        """The reference written as ``ref`` (a :class:`ModelRef` is returned as it is).

        Raises:
            ValidationError: ``ref`` is empty or not a string; an empty or invalid alias or name;
                a version that is not an integer >= 1; both an alias and a version.
        """
        if isinstance(ref, ModelRef):
            return ref
        if not isinstance(ref, str) or not ref:
            raise ValidationError(f"model must be {_REF_FORMS}, got {ref!r}")
        if "@" in ref and ":" in ref:
            raise ValidationError(
                f"model reference {ref!r} names both an alias and a version; give one: {_REF_FORMS}"
            )
        name, at, alias = ref.partition("@")
        if at:
            if not alias:
                raise ValidationError(f"model reference {ref!r} has an empty alias; use 'name@alias'")
            return cls(name, alias=alias)
        name, colon, version = ref.partition(":")
        if colon:
            if not _VERSION.fullmatch(version):
                raise ValidationError(f"model version in {ref!r} must be an integer, e.g. 'fraud:3'")
            if len(version) > len(str(MAX_VERSION)) or not 1 <= int(version) <= MAX_VERSION:
                raise ValidationError(
                    f"model version in {ref!r} must be an integer from 1 to {MAX_VERSION}, e.g. 'fraud:3'"
                )
            return cls(name, version=int(version))
        return cls(name)

    def pin(self, version: int | None) -> ModelRef:
        """This reference with ``version`` pinned (None: unchanged): the keyword form of
        ``"name:3"`` that ``get_model(..., version=3)`` and ``deploy(..., version=3)`` take.

        Raises:
            ValidationError: the reference already names an alias or a version; a bad version.
        """
        if version is None:
            return self
        if self.alias is not None:
            raise ValidationError(f"give either an alias ({str(self)!r}) or version={version!r}, not both")
        if self.version is not None:
            raise ValidationError(
                f"give the version either in the reference ({str(self)!r}) or as version={version!r}, "
                "not both"
            )
        return ModelRef(self.name, version=version)

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name
