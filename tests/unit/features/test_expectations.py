"""Great Expectations' suite API (fti.features.expectations): a Hopsworks tutorial's suite ports
by changing its imports, and is checked by pandera on every insert."""

from __future__ import annotations

import pandas as pd
import pytest

import fti
import fti.features.expectations as ge
from fti.errors import ExpectationError, ValidationError
from fti.features.expectations import ExpectationConfiguration


def _suite() -> ge.ExpectationSuite:
    suite = ge.from_pandas(pd.DataFrame()).get_expectation_suite()
    suite.expectation_suite_name = "orders_suite"
    for kind, kwargs in [
        ("expect_column_distinct_values_to_be_in_set", {"column": "label", "value_set": [0, 1]}),
        ("expect_column_values_to_be_between", {"column": "amount", "min_value": 0.0, "max_value": 100}),
        ("expect_column_values_to_not_be_null", {"column": "code"}),
        ("expect_column_values_to_match_regex", {"column": "code", "regex": r"^[A-Z]{2}\d$"}),
        ("expect_column_values_to_be_null", {"column": "id", "mostly": 0.0}),  # always holds
    ]:
        suite.add_expectation(ExpectationConfiguration(expectation_type=kind, kwargs=kwargs))
    return suite


def _rows(**changes: list[object]) -> pd.DataFrame:
    data: dict[str, list[object]] = {
        "id": [1, 2],
        "label": [0, 1],
        "amount": [5.0, 99.5],
        "code": ["AB1", "CD2"],
    }
    return pd.DataFrame({**data, **changes})


def test_a_great_expectations_suite_is_checked_on_every_insert(sqlite_project: fti.Project) -> None:
    fg = sqlite_project.feature_store.get_or_create_feature_group(
        "orders", primary_key=["id"], expectation_suite=_suite()
    )
    assert fg.insert(_rows()).rows == 2
    for bad, named in [
        (_rows(label=[0, 2]), "label"),
        (_rows(amount=[-1.0, 5.0]), "amount"),
        (_rows(amount=[5.0, 100.5]), "amount"),
        (_rows(code=["AB1", "bad"]), "code"),
        (_rows(code=["AB1", None]), "code"),
    ]:
        with pytest.raises(ExpectationError, match=named):
            fg.insert(bad)
    assert len(fg.read()) == 2  # nothing of a rejected insert was written
    schema = _suite().to_pandera()
    assert schema.name == "orders_suite" and set(schema.columns) == {"label", "amount", "code", "id"}
    assert not schema.columns["code"].nullable and schema.columns["id"].nullable


def test_what_fti_cannot_check_exactly_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="'expect_table_row_count_to_be_between' is not supported"):
        ExpectationConfiguration(
            expectation_type="expect_table_row_count_to_be_between", kwargs={"column": "x"}
        )
    with pytest.raises(ValidationError, match="needs kwargs with the column name"):
        ExpectationConfiguration(expectation_type="expect_column_values_to_be_unique", kwargs={})
    suite = ge.ExpectationSuite("s")
    with pytest.raises(ValidationError, match=r"mostly=0.9 is not supported"):
        suite.add_expectation(
            ExpectationConfiguration("expect_column_values_to_not_be_null", {"column": "a", "mostly": 0.9})
        )
    with pytest.raises(ValidationError, match=r"supported with mostly=0\.0 only"):
        suite.add_expectation(ExpectationConfiguration("expect_column_values_to_be_null", {"column": "a"}))
    with pytest.raises(ValidationError, match="needs min_value or max_value"):
        suite.add_expectation(ExpectationConfiguration("expect_column_values_to_be_between", {"column": "a"}))
    with pytest.raises(ValidationError, match="takes an ExpectationConfiguration"):
        suite.add_expectation({"expectation_type": "expect_column_values_to_be_unique"})  # type: ignore[arg-type]
    assert suite.expectations == []
