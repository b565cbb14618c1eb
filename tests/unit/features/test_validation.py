"""Expectation suites (pandera) on inserts: strict rejects everything, warn inserts and reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pandera.pandas as pa
import pytest

import fti
from fti.errors import ExpectationError, ValidationError

SUITE = pa.DataFrameSchema(
    {
        "amount": pa.Column(float, pa.Check.in_range(0, 1000)),
        "category": pa.Column(str, pa.Check.isin(["food", "travel"])),
    }
)


def data(amounts: list[float], categories: list[str]) -> pd.DataFrame:
    n = len(amounts)
    return pd.DataFrame(
        {
            "id": list(range(n)),
            "ts": [datetime(2024, 1, 1, tzinfo=UTC)] * n,
            "amount": amounts,
            "category": categories,
        }
    )


@pytest.fixture
def group(project: fti.Project):
    return project.feature_store.get_or_create_feature_group(
        "checked", primary_key=["id"], event_time="ts", online_enabled=True, expectation_suite=SUITE
    )


def test_strict_rejects_whole_insert_and_reports_every_failure(group) -> None:
    with pytest.raises(ExpectationError) as info:
        group.insert(data([5.0, -1.0, 2000.0, 3.0], ["food", "food", "travel", "toys"]))
    failures = {f["column"]: f for f in info.value.details["failures"]}
    assert failures["amount"]["failed_rows"] == 2
    assert sorted(failures["amount"]["examples"]) == [-1.0, 2000.0]
    assert failures["category"]["examples"] == ["toys"]
    assert failures["category"]["example_rows"] == [3]
    assert "nothing was written" in str(info.value)
    assert group.commits() == []
    assert group.online_lookup([{"id": 0}]) == [None]


def test_warn_inserts_and_stores_the_report(group) -> None:
    result = group.insert(data([5.0, -1.0], ["food", "food"]), validation="warn")
    assert result.validation == "warned"
    assert result.report is not None and result.report["failures"][0]["column"] == "amount"
    commit = group.commits()[0]
    assert commit.validation_status == "warned"
    assert commit.validation_report["failures"][0]["failed_rows"] == 1
    assert len(group.read()) == 2


def test_passing_insert_records_passed(group) -> None:
    assert group.insert(data([1.0], ["travel"])).validation == "passed"
    assert group.commits()[0].validation_status == "passed"


def test_suite_survives_a_reconnect(group, project: fti.Project) -> None:
    again = project.feature_store.get_feature_group("checked")
    with pytest.raises(ExpectationError):
        again.insert(data([-5.0], ["food"]))


def test_bad_validation_mode_and_bad_suite(group, project: fti.Project) -> None:
    with pytest.raises(ValidationError, match="validation must be one of"):
        group.insert(data([1.0], ["food"]), validation="lenient")
    with pytest.raises(ValidationError, match="expectation_suite must be a pandera"):
        project.feature_store.get_or_create_feature_group("x", primary_key=["id"], expectation_suite={"a": 1})
