"""Turning user dataframes (pandas, polars, pyarrow) into Arrow tables with fti's column types."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fti.errors import SchemaError, ValidationError
from fti.types import arrow_type, dtype_of


def to_arrow(data: Any, *, what: str = "data") -> pa.Table:
    """Accept a pandas/polars DataFrame or a pyarrow Table/RecordBatch; anything else is rejected."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and type(data).__name__ == "DataFrame":
        if data.columns.duplicated().any():
            dupes = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
            raise SchemaError(f"{what} has duplicate column names: {', '.join(dupes)}")
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaError(f"{what} has a column fti cannot convert: {exc}") from exc
    if module == "polars" and type(data).__name__ == "DataFrame":
        return data.to_arrow()
    raise ValidationError(
        f"{what} must be a pandas DataFrame, polars DataFrame or pyarrow Table, "
        f"got {type(data).__module__}.{type(data).__name__}"
    )


RESERVED_PREFIX = "__fti_"
"""Column names fti uses internally (training-dataset splits, row numbers, join ranks)."""


def check_column_names(names: list[str], *, what: str = "data") -> None:
    """Reject names fti reserves and names that differ only in case (Delta Lake, DuckDB and the
    online stores treat column names case-insensitively), before anything is written."""
    reserved = [n for n in names if n.startswith(RESERVED_PREFIX)]
    if reserved:
        raise SchemaError(
            f"{what}: column name {reserved[0]!r} is reserved (names starting with "
            f"{RESERVED_PREFIX!r} are fti's own); rename it"
        )
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise SchemaError(
                f"{what}: columns {other!r} and {name!r} differ only in case, which Delta Lake "
                "column names do not distinguish; rename one of them"
            )


def cast_exactly(column: pa.ChunkedArray, target: pa.DataType, name: str) -> pa.ChunkedArray:
    """``column`` cast to ``target`` without losing anything, or a SchemaError that shows the first
    value that does not fit and how to fix it."""
    try:
        return pc.cast(column, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        source = column.type
        if pa.types.is_dictionary(source):
            source = source.value_type
        if pa.types.is_timestamp(source) and pa.types.is_timestamp(target):
            truncated = pc.cast(pc.cast(column, target, safe=False), source)
            rows = pc.indices_nonzero(pc.not_equal(column, truncated)).to_pylist()
            if rows:
                shown = str(column[rows[0]]).removesuffix("+00:00")
                raise SchemaError(
                    f"column {name!r} has timestamps with nanoseconds (e.g. row {rows[0]}: {shown}), "
                    f"but fti stores microseconds; round them first, e.g. "
                    f"df[{name!r}] = df[{name!r}].dt.floor('us') (pandas) or "
                    f"pl.col({name!r}).dt.cast_time_unit('us') (polars)"
                ) from exc
        if pa.types.is_integer(source) and pa.types.is_integer(target):
            (low, high), (have_low, have_high) = _int_range(target), _int_range(source)
            outside = [pc.greater(column, pa.scalar(high, source))] if high < have_high else []
            outside += [pc.less(column, pa.scalar(low, source))] if low > have_low else []
            for mask in outside:
                rows = pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()
                if rows:
                    raise SchemaError(
                        f"column {name!r} holds {column[rows[0]].as_py()} (row {rows[0]}), beyond the "
                        f"{target} range [{low}, {high}] fti stores integers in; store such values "
                        "as strings or floats"
                    ) from exc
        raise SchemaError(f"column {name!r} cannot be stored as {target}: {exc}") from exc


def _int_range(target: pa.DataType) -> tuple[int, int]:
    bits = int(target.bit_width)
    if pa.types.is_unsigned_integer(target):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def normalize(table: pa.Table, *, what: str = "data") -> pa.Table:
    """Cast every column to the canonical Arrow type of its fti dtype.

    Naive timestamps are rejected: fti never guesses a time zone.
    """
    columns: list[pa.ChunkedArray] = []
    problems: list[str] = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            problems.append(
                f"column {name!r} holds naive timestamps; localize them to a time zone first, e.g. "
                f"df[{name!r}] = df[{name!r}].dt.tz_localize('UTC') (pandas) or "
                f"pl.col({name!r}).dt.replace_time_zone('UTC') (polars)"
            )
            continue
        if pa.types.is_null(column.type):
            problems.append(
                f"column {name!r} holds only nulls, so its type is unknown; declare it "
                "with features=[fti.Feature(name, dtype)] or insert typed values"
            )
            continue
        dtype = dtype_of(column.type)
        if dtype is None:
            hint = ""
            if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
                hint = f"; declare an embedding with features=[fti.Feature({name!r}, 'vector[N]'), ...]"
            problems.append(f"column {name!r} has unsupported type {column.type}{hint}")
            continue
        if dtype.startswith("vector["):
            from fti.features.embeddings import cast_vectors

            columns.append(cast_vectors(column, dtype, name))  # type: ignore[arg-type]
            continue
        target = arrow_type(dtype)
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        columns.append(column if column.type == target else cast_exactly(column, target, name))
    if problems:
        raise SchemaError(f"{what} cannot be stored: " + "; ".join(problems))
    return pa.table(columns, names=table.column_names)
