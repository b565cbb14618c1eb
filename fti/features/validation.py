"""Expectation suites: data-quality rules checked on every insert.

fti uses pandera (smaller install and faster import than Great Expectations). A suite is a
``pandera.pandas.DataFrameSchema``; it is stored in the catalog as pandera's JSON so it travels
with the feature group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fti.errors import ValidationError

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of validating one insert: each failed expectation with counts and examples."""

    success: bool
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"success": self.success, "failures": self.failures}

    def summary(self) -> str:
        parts = [
            f"{f['column']}: {f['check']} failed for {f['failed_rows']} row(s), e.g. {f['examples']}"
            for f in self.failures
        ]
        return "; ".join(parts)


def suite_to_json(suite: Any) -> dict[str, Any] | None:
    """Serialise a pandera DataFrameSchema (or None) for the catalog."""
    if suite is None:
        return None
    import orjson

    try:
        pa_pd = pandera_module()
    except ImportError as exc:  # pragma: no cover - pandera is a core dependency
        raise ValidationError("expectation suites need pandera: pip install pandera") from exc
    from fti.features.expectations import ExpectationSuite

    if isinstance(suite, ExpectationSuite):  # Great Expectations' form (Hopsworks tutorials)
        suite = suite.to_pandera()
    if not isinstance(suite, pa_pd.DataFrameSchema):
        raise ValidationError(
            "expectation_suite must be a pandera.pandas.DataFrameSchema or an "
            f"fti.features.expectations.ExpectationSuite, got {type(suite).__name__}; see the "
            "README section 'Validation'"
        )
    return orjson.loads(suite.to_json())  # type: ignore[no-any-return]


def validate(table: pa.Table, suite_json: dict[str, Any]) -> ValidationReport:
    """Check every expectation lazily (all failures collected, not just the first)."""
    import orjson

    pa_pd = pandera_module()
    import pandera.errors

    schema = pa_pd.DataFrameSchema.from_json(orjson.dumps(suite_json).decode())
    frame = table.to_pandas()
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        return ValidationReport(False, _failures(exc.failure_cases))
    return ValidationReport(True)


def pandera_module() -> Any:
    """``pandera.pandas``. Importing pandera imports ``pyspark.pandas`` when pyspark is installed
    (``fti[spark]``), which warns about pandas 3 at every first import; fti never runs pandas on
    Spark, so that warning is silenced here."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support", category=FutureWarning
        )
        import pandera.pandas

    return pandera.pandas


def _failures(cases: Any) -> list[dict[str, Any]]:
    failures: list[dict[str, Any]] = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=True):
        examples = [_plain(v) for v in group["failure_case"].head(MAX_EXAMPLES)]
        rows = [int(i) for i in group["index"].dropna().head(MAX_EXAMPLES)]
        failures.append(
            {
                "column": None if column != column else str(column),
                "check": str(check),
                "failed_rows": len(group),
                "examples": examples,
                "example_rows": rows,
            }
        )
    return failures


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)
