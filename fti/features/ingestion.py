"""The checks of an insert into a feature group: schema, keys and the expectation suite.

Every check runs before any write (ARCHITECTURE.md invariant 4, "nothing lost"), so a rejected
insert writes nothing; :mod:`fti.features.commit` then writes the checked data. Also the
latest-row-per-key selection the online store is fed with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from fti._buffers import integer_view
from fti.errors import ExpectationError, SchemaError, ValidationError
from fti.features._frames import cast_exactly, check_column_names, normalize, to_arrow
from fti.features.records import CommitInfo
from fti.types import Feature, arrow_type, dtype_of

if TYPE_CHECKING:
    from fti.features.feature_group import FeatureGroup

__all__ = ["CommitInfo", "InsertResult", "latest_per_key", "prepare", "run_validation"]

VALIDATION_MODES = ("strict", "warn", "none")
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class InsertResult:
    """What an insert committed."""

    version: int
    """The offline (Delta) commit version."""
    rows: int
    validation: str
    """``passed``, ``warned`` (failures stored in the report) or ``none`` (no suite)."""
    report: dict[str, Any] | None = None
    online_rows: int = 0


def prepare(
    fg: FeatureGroup, data: Any, *, check_unique: bool = True
) -> tuple[pa.Table, list[Feature] | None]:
    """Check ``data`` against the group and return it in the stored column order and types.

    Returns the table and, on the first insert, the schema it fixes. Raises before any write.
    ``check_unique=False`` skips the duplicate-key check, for callers whose keys are unique by
    construction.
    """
    from fti.features.external import refuse

    refuse(fg, "take inserted or pushed rows")
    table = to_arrow(data, what=f"data for feature group {fg.name!r}")
    if table.num_rows == 0:
        raise ValidationError(f"cannot insert an empty dataframe into feature group {fg.name!r}")
    missing_keys = [k for k in fg.primary_key if k not in table.column_names]
    if missing_keys:
        raise SchemaError(
            f"primary key column(s) {missing_keys} missing from the data for feature group "
            f"{fg.name!r} (columns given: {table.column_names})"
        )
    if fg.event_time and fg.event_time not in table.column_names:
        raise SchemaError(f"event time column {fg.event_time!r} missing from the data for {fg.name!r}")

    new_schema: list[Feature] | None = None
    if fg.features is None:
        check_column_names(table.column_names, what=f"data for feature group {fg.name!r}")
        table = normalize(table, what=f"data for feature group {fg.name!r}")
        new_schema = [Feature(f.name, dtype_of(f.type) or "") for f in table.schema]
    else:
        table = _conform(fg, table)

    if fg.event_time and not pa.types.is_timestamp(table.column(fg.event_time).type):
        raise SchemaError(
            f"event time column {fg.event_time!r} must hold tz-aware timestamps, "
            f"got {table.column(fg.event_time).type}"
        )
    _check_not_null(fg, table)
    if check_unique:
        _check_unique(fg, table)
    return table, new_schema


def _conform(fg: FeatureGroup, table: pa.Table) -> pa.Table:
    assert fg.features is not None
    expected = {f.name: f.dtype for f in fg.features}
    missing = [n for n in expected if n not in table.column_names]
    extra = [n for n in table.column_names if n not in expected]
    problems: list[str] = []
    if missing:
        problems.append(f"missing column(s) {missing}")
    if extra:
        problems.append(f"unexpected column(s) {extra} (add them first with fg.append_features([...]))")
    columns: list[pa.ChunkedArray] = []
    for name, dtype in expected.items():
        if name not in table.column_names:
            continue
        column = table.column(name)
        try:
            cast = _cast(column, dtype, name)
        except SchemaError as exc:  # compatible types, but a value does not fit: say which
            problems.append(exc.message)
            continue
        if cast is None:
            got = dtype_of(column.type) or str(column.type)
            if pa.types.is_timestamp(column.type) and column.type.tz is None:
                got += f" (naive timestamps; localize them, e.g. df[{name!r}].dt.tz_localize('UTC'))"
            problems.append(f"column {name!r} has type {got}, expected {dtype}")
        else:
            columns.append(cast)
    if problems:
        raise SchemaError(
            f"data does not match the schema of feature group {fg.name!r}: " + "; ".join(problems)
        )
    return pa.table(columns, names=list(expected))


def _cast(column: pa.ChunkedArray, dtype: str, name: str) -> pa.ChunkedArray | None:
    """Cast to the stored type when that loses nothing; None when the types are incompatible, a
    SchemaError naming the value when they are compatible but a value does not fit."""
    target = arrow_type(dtype)
    if column.type == target:
        return column
    source = column.type
    if pa.types.is_dictionary(source):
        column = pc.cast(column, source.value_type)
        source = source.value_type
    have = dtype_of(source)
    if have is None:
        return None
    ints = {"int8", "int16", "int32", "int64"}
    floats = {"float32", "float64"}
    compatible = (
        have == dtype
        or (have in ints and dtype in ints)
        or (have in ints | floats and dtype in floats)
        or pa.types.is_null(source)
    )
    if not compatible:
        return None
    return cast_exactly(column, target, name)


def _check_not_null(fg: FeatureGroup, table: pa.Table) -> None:
    for name in fg.key_columns:
        column = table.column(name)
        kind = "primary key" if name in fg.primary_key else "event time"
        if column.null_count:
            rows = pc.indices_nonzero(pc.is_null(column)).to_pylist()[:MAX_EXAMPLES]
            raise ValidationError(
                f"{kind} column {name!r} has {column.null_count} null value(s) (rows {rows}); "
                "every row needs a value"
            )
        if pa.types.is_floating(column.type):
            # NaN equals nothing, not even itself: such a key could never be looked up or upserted
            nan = pc.fill_null(pc.is_nan(column), False)
            count = pc.sum(nan).as_py() or 0
            if count:
                rows = pc.indices_nonzero(nan).to_pylist()[:MAX_EXAMPLES]
                raise ValidationError(
                    f"{kind} column {name!r} has {count} NaN value(s) (rows {rows}); every row needs "
                    "a key that equals itself: drop or fill them"
                )


# Up to this many rows the duplicate check uses Arrow compute kernels and numpy (as fast as DuckDB
# up to about 500k rows, faster below); above it, DuckDB's parallel hash aggregation (about twice
# as fast at 2M rows). The model server's inference-log flushes then never load DuckDB.
ARROW_UNIQUE_MAX_ROWS = 500_000


def _check_unique(fg: FeatureGroup, table: pa.Table) -> None:
    keys = fg.key_columns
    if table.num_rows <= ARROW_UNIQUE_MAX_ROWS:
        groups, examples = _duplicates_arrow(table, keys)
    else:
        groups, examples = _duplicates_duckdb(table, keys)
    if groups:
        shown = [
            {k: (str(v) if k == fg.event_time else v) for k, v in zip(keys, e, strict=True)} for e in examples
        ]
        what = "(primary key, event time)" if fg.event_time else "primary key"
        raise ValidationError(
            f"{groups} duplicate {what} value(s) in one insert into {fg.name!r}, e.g. "
            f"{shown}; keep one row per {what}"
        )


def _duplicates_arrow(table: pa.Table, keys: list[str]) -> tuple[int, list[tuple[Any, ...]]]:
    """How many key tuples occur more than once, and the first few of them in key order.

    Compute kernels and numpy only: ``Table.group_by`` would load Acero and with it pandas.
    """
    import numpy as np

    # number each key tuple: one integer when the product of the columns' cardinalities fits
    # (sorting a 1-D array is far faster than np.unique(axis=0)), else one row of codes
    encoded = [pc.dictionary_encode(table.column(k).combine_chunks()) for k in keys]
    cardinalities = [len(e.dictionary) for e in encoded]
    if np.prod(np.array(cardinalities, dtype=np.float64)) < 2.0**62:
        codes = np.zeros(table.num_rows, dtype=np.int64)
        for e, cardinality in zip(encoded, cardinalities, strict=True):
            codes = codes * cardinality + integer_view(e.indices).astype(np.int64)
        _, first, counts = np.unique(codes, return_index=True, return_counts=True)
    else:
        rows = np.column_stack([integer_view(e.indices) for e in encoded])
        _, first, counts = np.unique(rows, axis=0, return_index=True, return_counts=True)
    repeated = first[counts > 1]
    if not len(repeated):
        return 0, []
    shown = table.select(keys).take(repeated).sort_by([(k, "ascending") for k in keys])
    columns = [shown.column(k).to_pylist()[:MAX_EXAMPLES] for k in keys]
    return len(repeated), list(zip(*columns, strict=True))


def _duplicates_duckdb(table: pa.Table, keys: list[str]) -> tuple[int, list[tuple[Any, ...]]]:
    from fti._duckdb import connect, quote

    cols = ", ".join(quote(k) for k in keys)
    # Timestamps come back as text: DuckDB's Python conversion of TIMESTAMPTZ needs pytz.
    shown = ", ".join(
        f"{quote(k)}::VARCHAR" if pa.types.is_timestamp(table.schema.field(k).type) else quote(k)
        for k in keys
    )
    con = connect()
    con.register("data", table.select(keys))
    dupes = con.execute(
        f"SELECT {shown}, count(*) OVER () AS groups FROM data GROUP BY {cols} "
        f"HAVING count(*) > 1 ORDER BY {cols} LIMIT {MAX_EXAMPLES}"
    ).fetchall()
    con.close()
    return (dupes[0][-1] if dupes else 0), [d[: len(keys)] for d in dupes]


def run_validation(fg: FeatureGroup, table: pa.Table, mode: str) -> tuple[str, dict[str, Any] | None]:
    if mode not in VALIDATION_MODES:
        raise ValidationError(f"validation must be one of {VALIDATION_MODES}, got {mode!r}")
    if fg.expectation_suite is None or mode == "none":
        return "none", None
    from fti.features.validation import validate

    report = validate(table, fg.expectation_suite)
    if report.success:
        return "passed", report.to_dict()
    if mode == "strict":
        raise ExpectationError(
            f"insert into {fg.name!r} rejected by its expectation suite (nothing was written): "
            f"{report.summary()}",
            details=report.to_dict(),
        )
    return "warned", report.to_dict()


def latest_per_key(table: pa.Table | Any, primary_key: list[str], event_time: str | None) -> pa.Table:
    """One row per primary key: the one with the greatest event time."""
    from fti._duckdb import connect, fetch_arrow, quote

    con = connect()
    con.register("data", table)
    keys = ", ".join(quote(k) for k in primary_key)
    order = f"ORDER BY {quote(event_time)} DESC" if event_time else ""
    # Rows whose key is null or NaN (written before inserts rejected them) can never be looked
    # up: leave them out rather than let them fail every online write.
    schema = table.schema
    valid = [f"{quote(k)} IS NOT NULL" for k in [*primary_key, *([event_time] if event_time else [])]]
    valid += [f"NOT isnan({quote(k)})" for k in primary_key if pa.types.is_floating(schema.field(k).type)]
    result = fetch_arrow(
        con,
        f"SELECT * FROM data WHERE {' AND '.join(valid)} "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} {order}) = 1",
    )
    con.close()
    return result
