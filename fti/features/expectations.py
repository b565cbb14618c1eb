"""Great Expectations' suite API, for Hopsworks tutorials: their expectation suites port by
changing the imports only.

A Hopsworks feature pipeline writes::

    import great_expectations as ge
    from great_expectations.core import ExpectationSuite, ExpectationConfiguration

    suite = ge.from_pandas(df).get_expectation_suite()
    suite.add_expectation(ExpectationConfiguration(
        expectation_type="expect_column_values_to_be_between",
        kwargs={"column": "amount", "min_value": 0.0}))
    fs.get_or_create_feature_group(..., expectation_suite=suite)

On fti the first two lines become ``import fti.features.expectations as ge`` and ``from
fti.features.expectations import ExpectationSuite, ExpectationConfiguration``. fti checks suites
with pandera (see :mod:`fti.features.validation`): :meth:`ExpectationSuite.to_pandera` turns each
supported expectation into the pandera check that means the same, and an expectation it cannot
express is a ``ValidationError`` naming it (never silently dropped). Great Expectations itself is
not needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fti.errors import ValidationError

SUPPORTED = (
    "expect_column_to_exist",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_distinct_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_unique",
    "expect_column_values_to_match_regex",
    "expect_column_value_lengths_to_be_between",
)
"""Expectation types fti checks (each on every row, with ``mostly`` 1.0: all rows)."""


@dataclass
class ExpectationConfiguration:
    """One expectation: Great Expectations' ``expectation_type`` and its ``kwargs``."""

    expectation_type: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.expectation_type not in SUPPORTED:
            raise ValidationError(
                f"expectation type {self.expectation_type!r} is not supported; fti checks "
                f"{', '.join(SUPPORTED)} (or pass a pandera DataFrameSchema as the suite)"
            )
        if not isinstance(self.kwargs, Mapping) or not isinstance(self.kwargs.get("column"), str):
            raise ValidationError(
                f"{self.expectation_type} needs kwargs with the column name, e.g. "
                f"{{'column': 'amount'}}, got {self.kwargs!r}"
            )
        self.kwargs = dict(self.kwargs)


@dataclass
class ExpectationSuite:
    """A named list of expectations, as Great Expectations' ``ExpectationSuite``."""

    expectation_suite_name: str = "default"
    expectations: list[ExpectationConfiguration] = field(default_factory=list)

    def add_expectation(
        self, expectation_configuration: ExpectationConfiguration
    ) -> ExpectationConfiguration:
        """Add an expectation (checked now: an unsupported one raises here)."""
        if not isinstance(expectation_configuration, ExpectationConfiguration):
            raise ValidationError(
                f"add_expectation takes an ExpectationConfiguration, got {type(expectation_configuration).__name__}"
            )
        _check(expectation_configuration.expectation_type, expectation_configuration.kwargs)
        self.expectations.append(expectation_configuration)
        return expectation_configuration

    def to_pandera(self) -> Any:
        """The suite as a ``pandera.pandas.DataFrameSchema`` (one column entry per column named)."""
        import pandera.pandas as pa

        columns: dict[str, dict[str, Any]] = {}
        for expectation in self.expectations:
            kwargs = expectation.kwargs
            spec = columns.setdefault(kwargs["column"], {"checks": [], "nullable": True, "unique": False})
            kind = expectation.expectation_type
            if kind == "expect_column_values_to_not_be_null":
                spec["nullable"] = False
            elif kind == "expect_column_values_to_be_unique":
                spec["unique"] = True
            elif kind in ("expect_column_values_to_be_in_set", "expect_column_distinct_values_to_be_in_set"):
                spec["checks"].append(pa.Check.isin(list(kwargs["value_set"])))
            elif kind == "expect_column_values_to_not_be_in_set":
                spec["checks"].append(pa.Check.notin(list(kwargs["value_set"])))
            elif kind == "expect_column_values_to_be_between":
                spec["checks"].extend(_between(pa, kwargs))
            elif kind == "expect_column_values_to_match_regex":
                spec["checks"].append(pa.Check.str_matches(kwargs["regex"]))
            elif kind == "expect_column_value_lengths_to_be_between":
                spec["checks"].append(pa.Check.str_length(kwargs.get("min_value"), kwargs.get("max_value")))
            # expect_column_to_exist: a pandera column is required by default;
            # expect_column_values_to_be_null with mostly=0 (the only form accepted) always holds
        return pa.DataFrameSchema(
            {name: pa.Column(**spec) for name, spec in columns.items()}, name=self.expectation_suite_name
        )


class _Frame:
    """What ``from_pandas`` returns: its ``get_expectation_suite()`` starts an empty suite."""

    def __init__(self, df: Any) -> None:
        self.df = df

    def get_expectation_suite(self, *args: Any, **kwargs: Any) -> ExpectationSuite:
        return ExpectationSuite()


def from_pandas(df: Any) -> _Frame:
    """Great Expectations' ``ge.from_pandas(df)``, for ``.get_expectation_suite()``."""
    return _Frame(df)


def _check(kind: str, kwargs: Mapping[str, Any]) -> None:
    """``ValidationError`` for an expectation fti cannot check exactly as Great Expectations would."""
    mostly = kwargs.get("mostly", 1.0)
    if kind == "expect_column_values_to_be_null":
        if mostly != 0:
            raise ValidationError(
                f"expect_column_values_to_be_null on {kwargs['column']!r} is supported with mostly=0.0 "
                f"only (it then always holds), got mostly={mostly!r}"
            )
    elif mostly != 1.0:
        raise ValidationError(
            f"{kind} on {kwargs['column']!r}: mostly={mostly!r} is not supported (fti checks every row); "
            "drop mostly, or express the rule as a pandera DataFrameSchema"
        )
    needed = {
        "expect_column_values_to_be_in_set": "value_set",
        "expect_column_distinct_values_to_be_in_set": "value_set",
        "expect_column_values_to_not_be_in_set": "value_set",
        "expect_column_values_to_match_regex": "regex",
    }.get(kind)
    if needed is not None and needed not in kwargs:
        raise ValidationError(f"{kind} on {kwargs['column']!r} needs {needed!r} in its kwargs")
    if kind in ("expect_column_values_to_be_between", "expect_column_value_lengths_to_be_between") and (
        kwargs.get("min_value") is None and kwargs.get("max_value") is None
    ):
        raise ValidationError(f"{kind} on {kwargs['column']!r} needs min_value or max_value")


def _between(pa: Any, kwargs: Mapping[str, Any]) -> list[Any]:
    checks = []
    if kwargs.get("min_value") is not None:
        low = kwargs["min_value"]
        checks.append(pa.Check.gt(low) if kwargs.get("strict_min") else pa.Check.ge(low))
    if kwargs.get("max_value") is not None:
        high = kwargs["max_value"]
        checks.append(pa.Check.lt(high) if kwargs.get("strict_max") else pa.Check.le(high))
    return checks
