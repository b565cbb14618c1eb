"""The checks of a Spark insert, as Spark aggregations: null keys, duplicate keys, the expectation suite.

An expectation suite is a pandera schema (:mod:`fti.features.validation`). Its column checks that
are conditions on one value (comparisons, ``in_range``, ``isin``/``notin``, the ``str_*`` checks)
become Spark column expressions, counted in one aggregation over the data together with the null
keys; ``nullable=False`` and ``unique=True`` likewise. The report has the shape and check names of
the embedded engine's (pandera's) report; ``example_rows`` is empty (a Spark DataFrame has no row
index). A suite with checks Spark cannot evaluate this way (custom or DataFrame-wide checks, regex
column names) is refused before any job runs, with the checks named. Column dtypes are the feature
group's schema, which the insert enforces anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Expectation:
    """One check of the suite on one column: a failure condition (null and NaN values pass, as in
    pandera, except for ``not_nullable``)."""

    column: str
    check: str
    """The name pandera reports, e.g. ``in_range(0, 1000)``."""
    fails: Any
    """A Spark ``Column``: true on failing rows (None for ``field_uniqueness``, counted by group)."""


def expectations(suite_json: dict[str, Any], dtypes: dict[str, str]) -> list[Expectation]:
    """The suite's checks as Spark conditions on columns of the given fti ``dtypes``.

    Raises:
        ValidationError: the suite has checks Spark cannot evaluate as column conditions.
    """
    import orjson
    from pyspark.sql import functions as F

    from fti.features.validation import pandera_module

    schema = pandera_module().DataFrameSchema.from_json(orjson.dumps(suite_json).decode())
    unsupported: list[str] = [f"DataFrame check {check.error}" for check in schema.checks]
    if schema.unique:
        unsupported.append(f"unique={schema.unique}")
    found: list[Expectation] = []
    for name, column in schema.columns.items():
        if column.regex:
            unsupported.append(f"regex column {name!r}")
            continue
        if name not in dtypes:
            continue  # a missing required column is the schema check's to report
        value = F.col(f"`{name}`")
        floating = dtypes[name] in ("float32", "float64")
        missing = value.isNull() | F.isnan(value) if floating else value.isNull()
        if not column.nullable:
            found.append(Expectation(name, "not_nullable", missing))
        if column.unique:
            found.append(Expectation(name, "field_uniqueness", None))
        for check in column.checks:
            condition = _condition(check.name, check.statistics, value)
            if condition is None:
                unsupported.append(f"{name}: {check.error}")
                continue
            fails = ~condition
            if getattr(check, "ignore_na", True):
                fails = ~missing & fails
            found.append(Expectation(name, str(check.error), fails))
    if unsupported:
        raise ValidationError(
            "the expectation suite has checks the Spark engine cannot run as Spark aggregations: "
            f"{'; '.join(unsupported)}. Insert a pandas, polars or Arrow frame (checked by pandera), or "
            "keep to column checks such as in_range, isin, greater_than and str_matches"
        )
    return found


def _condition(name: str, stats: dict[str, Any], value: Column) -> Column | None:
    """The pandera built-in check ``name`` as a Spark condition that holds on valid values."""
    from pyspark.sql import functions as F

    if name == "greater_than":
        return value > F.lit(stats["min_value"])
    if name == "greater_than_or_equal_to":
        return value >= F.lit(stats["min_value"])
    if name == "less_than":
        return value < F.lit(stats["max_value"])
    if name == "less_than_or_equal_to":
        return value <= F.lit(stats["max_value"])
    if name == "equal_to":
        return value == F.lit(stats["value"])
    if name == "not_equal_to":
        return value != F.lit(stats["value"])
    if name == "in_range":
        low, high = F.lit(stats["min_value"]), F.lit(stats["max_value"])
        above = value >= low if stats.get("include_min", True) else value > low
        below = value <= high if stats.get("include_max", True) else value < high
        return above & below
    if name == "isin":
        return value.isin(list(stats["allowed_values"]))
    if name == "notin":
        return ~value.isin(list(stats["forbidden_values"]))
    if name == "str_matches":  # pandas str.match: anchored at the start
        return value.rlike(f"^(?:{stats['pattern']})")
    if name == "str_contains":
        return value.rlike(str(stats["pattern"]))
    if name == "str_startswith":
        return value.startswith(str(stats["string"]))
    if name == "str_endswith":
        return value.endswith(str(stats["string"]))
    if name == "str_length":
        length = F.length(value)
        if stats.get("exact_value") is not None:
            return length == F.lit(stats["exact_value"])
        condition = F.lit(True)
        if stats.get("min_value") is not None:
            condition = condition & (length >= F.lit(stats["min_value"]))
        if stats.get("max_value") is not None:
            condition = condition & (length <= F.lit(stats["max_value"]))
        return condition
    return None


@dataclass(frozen=True)
class Findings:
    """What the checks found: rows, nulls per key column, repeated keys, the suite's failures."""

    rows: int
    null_keys: dict[str, int]
    duplicates: int
    """How many (key, event time) values occur more than once."""
    failures: list[dict[str, Any]]


def run(df: DataFrame, keys: Sequence[str], checks: Sequence[Expectation]) -> Findings:
    """Count the rows, the null values of every key column, the repeated keys and the failing rows
    of every check in one job (an aggregation by key, then over the groups), plus one per
    ``field_uniqueness`` check; then fetch a few failing values of the checks that failed."""
    from pyspark.sql import functions as F

    columns = [F.col(f"`{k}`") for k in keys]
    counted = [(i, check) for i, check in enumerate(checks) if check.fails is not None]
    groups = df.groupBy(*columns).agg(
        F.count(F.lit(1)).alias("__n"), *[F.count_if(check.fails).alias(f"__c{i}") for i, check in counted]
    )
    row = groups.agg(
        F.sum("__n").alias("rows"),
        F.count_if(F.col("__n") > 1).alias("repeated"),
        *[
            F.sum(F.when(column.isNull(), F.col("__n")).otherwise(0)).alias(f"null{i}")
            for i, column in enumerate(columns)
        ],
        *[F.sum(f"__c{i}").alias(f"check{i}") for i, _ in counted],
    ).collect()[0]
    failures: list[dict[str, Any]] = []
    for i, check in enumerate(checks):
        value = F.col(f"`{check.column}`")
        if check.fails is None:  # rows whose value occurs more than once
            repeated = df.where(value.isNotNull()).groupBy(value.alias("v")).count().where(F.col("count") > 1)
            count = int(repeated.agg(F.sum("count")).collect()[0][0] or 0)
            examples = [r["v"] for r in repeated.limit(MAX_EXAMPLES).collect()] if count else []
        else:
            count = int(row[f"check{i}"] or 0)
            failing = df.where(check.fails).select(value).limit(MAX_EXAMPLES)
            examples = [r[0] for r in failing.collect()] if count else []
        if count:
            failures.append(
                {
                    "column": check.column,
                    "check": check.check,
                    "failed_rows": count,
                    "examples": [_plain(v) for v in examples],
                    "example_rows": [],
                }
            )
    failures.sort(key=lambda f: (f["column"], f["check"]))
    nulls = {k: int(row[f"null{i}"] or 0) for i, k in enumerate(keys)}
    return Findings(int(row["rows"] or 0), nulls, int(row["repeated"] or 0), failures)


def duplicate_examples(df: DataFrame, keys: Sequence[str]) -> list[tuple[Any, ...]]:
    """The first few (key, event time) values that occur more than once, in key order."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    columns = [F.col(f"`{k}`") for k in keys]
    repeated = df.groupBy(*columns).count().where(F.col("count") > 1).drop("count")
    # times as text in the session's zone (UTC in fti's sessions), not as naive local datetimes
    shown = [
        F.col(f"`{f.name}`").cast("string")
        if isinstance(f.dataType, T.TimestampType)
        else F.col(f"`{f.name}`")
        for f in repeated.schema.fields
    ]
    return [tuple(r) for r in repeated.orderBy(*columns).select(*shown).limit(MAX_EXAMPLES).collect()]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)
