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
            problems.append(f"column {name!r} has unsupported type {column.type}")
            continue
        target = arrow_type(dtype)
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        columns.append(column if column.type == target else pc.cast(column, target))
    if problems:
        raise SchemaError(f"{what} cannot be stored: " + "; ".join(problems))
    return pa.table(columns, names=table.column_names)
