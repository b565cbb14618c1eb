"""The checks of an insert into a feature group: schema, keys and the expectation suite.

Every check runs before any write (ARCHITECTURE.md invariant 4, "nothing lost"), so a rejected
insert writes nothing; :mod:`fti.features.commit` then writes the checked data. Also the
latest-row-per-key selection the online store is fed with.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from fti._buffers import integer_view
from fti.errors import ExpectationError, SchemaError, ValidationError
from fti.features._frames import cast_exactly, check_column_names, normalize, to_arrow
from fti.features.records import CommitInfo
from fti.types import Feature, arrow_type, dtype_of, vector_dim

if TYPE_CHECKING:
    from fti.features.feature_group import FeatureGroup

log = logging.getLogger("fti.features")

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


def insert_options(
    validation: str,
    write_mode: str,
    operation: str | None,
    overwrite: bool,
    storage: str | None,
    write_options: Any,
    validation_options: Any,
    wait: bool,
) -> tuple[str, str]:
    """The ``validation`` and ``write_mode`` of an insert given fti's and Hopsworks' arguments
    (see :meth:`FeatureGroup.insert <fti.features.feature_group.FeatureGroup.insert>`)."""
    if operation is not None:
        modes = {"upsert": "upsert", "insert": "append"}
        if operation not in modes:
            raise ValidationError(f"operation must be 'upsert' or 'insert', got {operation!r}")
        write_mode = modes[operation]
    if write_mode not in ("upsert", "append"):
        raise ValidationError(f"write_mode must be 'upsert' or 'append', got {write_mode!r}")
    if overwrite is not False:
        raise ValidationError(
            "overwrite=True is not supported: delete the rows first with fg.delete_records(keys), "
            "or create a new version of the feature group for a new data set"
        )
    if storage is not None:
        raise ValidationError(
            f"storage={storage!r} is not supported: fti commits the offline table and derives the "
            "online store from it in the same call; omit storage"
        )
    for label, value in (("write_options", write_options), ("validation_options", validation_options)):
        if value is not None and not isinstance(value, Mapping):
            raise ValidationError(f"{label} must be a dict, got {value!r}")
    if not isinstance(wait, bool):
        raise ValidationError(f"wait must be True or False, got {wait!r}")
    if validation_options and validation_options.get("run_validation") is False:
        validation = "none"
    return validation, write_mode


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
    table = lower_case(fg, table)
    if fg.event_time and fg.event_time in table.column_names:
        table = epoch_event_times(fg, table)
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
        table = _check_unique(fg, table)
    return table, new_schema


def lower_case(fg: FeatureGroup, table: pa.Table) -> pa.Table:
    """Column names with upper-case letters lowered, as Hopsworks does (with a note), unless the
    group stores them that way; a name whose lowered form is taken is left for the checks."""
    names = table.column_names
    if all(name == name.lower() for name in names):
        return table
    check_column_names(names, what=f"data for feature group {fg.name!r}")  # 'A' and 'a': an error
    stored = None if fg.features is None else {f.name for f in fg.features}
    renamed = [
        name
        for name in names
        if name != name.lower()
        and (stored is None or (name not in stored and name.lower() in stored))
        and name.lower() not in names
    ]
    if not renamed:
        return table
    log.warning(
        "column name(s) %s of the data for feature group %r have upper-case letters: stored "
        "lower-cased, as Hopsworks does",
        renamed,
        fg.name,
    )
    return table.rename_columns([name.lower() if name in renamed else name for name in names])


# Epoch times of 1973 to 5138 in each unit: the bands do not overlap, so the magnitude tells the unit.
_EPOCH_BANDS = (("s", 1e8, 1e11), ("ms", 1e11, 1e14), ("us", 1e14, 1e17), ("ns", 1e17, 1e20))


def epoch_event_times(fg: FeatureGroup, table: pa.Table) -> pa.Table:
    """An integer event-time column as timestamps: epoch times in the group's ``event_time_unit``,
    or in the unit their magnitude shows (with a note), else a SchemaError saying what to pass."""
    name = str(fg.event_time)
    column = table.column(name)
    if not pa.types.is_integer(column.type):
        return table
    unit = fg.event_time_unit
    if unit is None:
        extent = pc.min_max(column)
        low, high = extent["min"].as_py(), extent["max"].as_py()
        if low is None:  # only nulls: the null check names them
            return table
        found = {
            band for band, start, end in _EPOCH_BANDS for value in (low, high) if start <= abs(value) < end
        }
        if len(found) != 1 or low < 0:
            raise SchemaError(
                f"event time column {name!r} of {fg.name!r} holds integers ({low} to {high}) whose "
                "unit fti cannot tell: create the group with "
                "event_time_unit='ms' (epoch milliseconds, as Hopsworks uses), 's', 'us' or 'ns', "
                "or insert tz-aware timestamps"
            )
        unit = found.pop()
        log.warning(
            "event time column %r of %r holds integers: read as epoch %s by their magnitude; pass "
            "event_time_unit=%r to the feature group to say so",
            name,
            fg.name,
            {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}[unit],
            unit,
        )
    times = pc.cast(column.cast(pa.int64()), pa.timestamp(unit, tz="UTC"))
    return table.set_column(table.column_names.index(name), name, times)


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
    if vector_dim(dtype) is not None:  # lists of numbers: dimension and finiteness checked
        from fti.features.embeddings import cast_vectors

        return cast_vectors(column, dtype, name)
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


def _check_unique(fg: FeatureGroup, table: pa.Table) -> pa.Table:
    """``table`` with one row per key: rows repeated whole are kept once (Hopsworks' upsert
    combines them too), with a note; keys repeated with different values are an error."""
    groups, examples = _duplicates(fg, table)
    if groups:
        deduplicated = _without_repeated_rows(table)
        if deduplicated is not None and not _duplicates(fg, deduplicated)[0]:
            log.warning(
                "%d row(s) of the data for feature group %r repeat an earlier row exactly: each "
                "is stored once",
                table.num_rows - deduplicated.num_rows,
                fg.name,
            )
            return deduplicated
        keys = fg.key_columns
        shown = [
            {k: (str(v) if k == fg.event_time else v) for k, v in zip(keys, e, strict=True)} for e in examples
        ]
        what = "(primary key, event time)" if fg.event_time else "primary key"
        raise ValidationError(
            f"{groups} duplicate {what} value(s) with different values in one insert into "
            f"{fg.name!r}, e.g. {shown}; keep one row per {what}"
        )
    return table


def _duplicates(fg: FeatureGroup, table: pa.Table) -> tuple[int, list[tuple[Any, ...]]]:
    if table.num_rows <= ARROW_UNIQUE_MAX_ROWS:
        return _duplicates_arrow(table, fg.key_columns)
    return _duplicates_duckdb(table, fg.key_columns)


def _without_repeated_rows(table: pa.Table) -> pa.Table | None:
    """``table`` with each row that repeats an earlier one whole left out (order kept), or None
    when its columns cannot be compared (nested values)."""
    if any(pa.types.is_nested(f.type) for f in table.schema):
        return None
    frame = table.to_pandas()
    kept = ~frame.duplicated(keep="first").to_numpy()
    return table.filter(pa.array(kept))


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
