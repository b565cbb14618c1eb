"""The checks of an insert (fti.features.ingestion): each bad input raises a typed error and
writes nothing."""

from __future__ import annotations

import pandas as pd
import pytest

import fti
from fti.errors import SchemaError, ValidationError
from tests.unit.features._data import assert_nothing_written, frame


def test_missing_primary_key_column(transactions) -> None:
    with pytest.raises(SchemaError, match=r"primary key column\(s\) \['cc_num'\] missing"):
        transactions.insert(frame([1], [0], [1.0]).drop(columns=["cc_num"]))
    assert_nothing_written(transactions)


def test_null_keys(transactions) -> None:
    df = frame([1, 2], [0, 1], [1.0, 2.0]).astype({"cc_num": "Int64"})
    df.loc[1, "cc_num"] = None
    with pytest.raises(
        ValidationError, match=r"primary key column 'cc_num' has 1 null value\(s\) \(rows \[1\]\)"
    ):
        transactions.insert(df)
    assert_nothing_written(transactions)


def test_naive_timestamps(transactions) -> None:
    df = frame([1], [0], [1.0])
    df["ts"] = df["ts"].dt.tz_localize(None)
    with pytest.raises(SchemaError, match=r"naive timestamps.*tz_localize"):
        transactions.insert(df)
    assert_nothing_written(transactions)


def test_wrong_dtypes_name_each_column(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    bad = frame([2], [1], [2.0]).assign(amount=["two"], category=[5])
    with pytest.raises(SchemaError) as info:
        transactions.insert(bad)
    assert "'amount' has type string, expected float64" in str(info.value)
    assert "'category' has type int64, expected string" in str(info.value)
    assert len(transactions.commits()) == 1


def test_extra_and_missing_columns(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    with pytest.raises(SchemaError, match=r"unexpected column\(s\) \['extra'\].*append_features"):
        transactions.insert(frame([2], [0], [1.0]).assign(extra=1))
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['category'\]"):
        transactions.insert(frame([2], [0], [1.0]).drop(columns=["category"]))


def test_int_widening_is_accepted(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    transactions.insert(frame([2], [1], [2.0]).astype({"cc_num": "int32", "amount": "int64"}))
    assert transactions.read()["amount"].sum() == 3.0


def test_empty_dataframe(transactions) -> None:
    with pytest.raises(ValidationError, match="empty dataframe"):
        transactions.insert(frame([], [], []))
    assert_nothing_written(transactions)


@pytest.mark.parametrize("data", [[{"cc_num": 1}], {"cc_num": [1]}, "cc_num", None])
def test_non_dataframe_argument(transactions, data) -> None:
    with pytest.raises(
        ValidationError, match="must be a pandas DataFrame, polars DataFrame or pyarrow Table"
    ):
        transactions.insert(data)
    assert_nothing_written(transactions)


def test_duplicate_keys_in_one_insert(transactions) -> None:
    with pytest.raises(
        ValidationError, match=r"1 duplicate \(primary key, event time\) value\(s\).*'cc_num': 1"
    ):
        transactions.insert(frame([1, 1, 2], [0, 0, 1], [1.0, 2.0, 3.0]))
    assert_nothing_written(transactions)


def test_duplicate_keys_in_a_large_insert(transactions, monkeypatch) -> None:
    """Above ARROW_UNIQUE_MAX_ROWS the check runs in DuckDB: same verdict, same message."""
    from fti.features import ingestion

    monkeypatch.setattr(ingestion, "ARROW_UNIQUE_MAX_ROWS", 4)
    n = 10
    keys = [*range(n), 7, 3]
    hours = [*range(n), 7, 3]
    with pytest.raises(
        ValidationError,
        match=r"2 duplicate \(primary key, event time\) value\(s\).*'cc_num': 3.*'cc_num': 7",
    ):
        transactions.insert(frame(keys, hours, [1.0] * len(keys)))
    assert_nothing_written(transactions)
    assert transactions.insert(frame(list(range(n)), list(range(n)), [1.0] * n)).rows == n


def test_declared_schema_is_enforced_from_the_first_insert(project: fti.Project) -> None:
    fg = project.feature_store.get_or_create_feature_group(
        "declared",
        primary_key=["id"],
        features=[fti.Feature("id", "int64"), fti.Feature("x", "float64")],
    )
    with pytest.raises(SchemaError, match="'x' has type string, expected float64"):
        fg.insert(pd.DataFrame({"id": [1], "x": ["a"]}))
    fg.insert(pd.DataFrame({"id": [1], "x": [0.5]}))
    assert fg.read()["x"].tolist() == [0.5]
    with pytest.raises(ValidationError, match="unknown dtype"):
        fti.Feature("y", "float")
