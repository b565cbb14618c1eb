"""Training datasets and batch data made by Spark equal those made by DuckDB.

The same rows, numbered and split the same way (random and time splits), the same catalog
records, the same transformed values: exactly, but for the statistics that are sums
(``standard_scaler``) or interpolated quantiles (``robust_scaler``), which agree to rounding.
Either engine reads a training dataset the other made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti.errors import ValidationError
from fti.features import training_data
from tests.unit.features._data import at, make_view

pytestmark = pytest.mark.spark
ROUNDED = ("amount", "p_score")  # standard_scaler and robust_scaler: statistics agree to rounding


@pytest.fixture
def groups(spark_project: fti.Project) -> dict[str, Any]:
    """The transactions, profiles and windows groups of the feature view tests."""
    fs = spark_project.feature_store
    tx = fs.get_or_create_feature_group("transactions", primary_key=["tid"], event_time="ts")
    profiles = fs.get_or_create_feature_group("profiles", primary_key=["cc_num"], event_time="ts")
    windows = fs.get_or_create_feature_group("windows", primary_key=["cc_num"])
    n = 60
    rng = np.random.default_rng(11)
    tx.insert(
        pd.DataFrame(
            {
                "tid": np.arange(n),
                "ts": [at(10 + i // 2) for i in range(n)],  # pairs of equal times
                "cc_num": np.arange(n) % 9,  # card 8 has no profile
                "amount": rng.normal(50, 20, n).round(3),
                "category": [["food", "travel", "misc"][i % 3] for i in range(n)],
                "is_fraud": (np.arange(n) % 5 == 0).astype(np.int64),
            }
        )
    )
    profiles.insert(
        pd.DataFrame(
            {
                "cc_num": list(range(8)) * 2,
                "ts": [at(0)] * 8 + [at(25)] * 8,
                "age": rng.integers(18, 90, 16).astype(float),
                "city": [["paris", "rome", "oslo"][i % 3] for i in range(16)],
                "score": rng.normal(0, 1, 16),
            }
        )
    )
    windows.insert(
        pd.DataFrame(
            {"cc_num": range(9), "spend": rng.uniform(0, 1000, 9), "n_tx": [0, 1, 3, 5, 7, 10, 12, 2, 4]}
        )
    )
    return {"tx": tx, "profiles": profiles, "windows": windows}


def assert_frames_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal column by column: bit for bit, but for the scaled columns (to rounding)."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for column in expected.columns:
        if column in ROUNDED:
            np.testing.assert_allclose(got[column], expected[column], rtol=1e-12, atol=1e-12)
        else:
            pd.testing.assert_series_equal(got[column], expected[column], check_dtype=True)


def assert_stats_equal(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for feature, stats in expected.items():
        for name, value in stats.items():
            if isinstance(value, float) and feature in ROUNDED:
                assert got[feature][name] == pytest.approx(value, rel=1e-12, abs=1e-12)
            else:
                assert got[feature][name] == value, (feature, name)


def stored(fv: Any, version: int) -> pa.Table:
    return training_data.read(fv, fv.training_dataset(version))


def test_random_split_and_reads_across_engines(spark_project, groups) -> None:
    fv = make_view(spark_project, groups)
    duckdb_parts = fv.train_validation_test_split(0.2, 0.1, seed=7)  # version 1
    fv.train_validation_test_split(0.2, 0.1, seed=7, engine="spark")  # version 2
    one, two = fv.training_dataset(1), fv.training_dataset(2)
    assert (two.split, two.row_counts, two.input_versions) == (one.split, one.row_counts, one.input_versions)
    assert two.row_counts == {"total": 60, "train": 42, "validation": 12, "test": 6}
    assert_stats_equal(two.transformation_stats, one.transformation_stats)
    # the same rows, numbered and split alike: the stored tables are equal
    assert stored(fv, 2).equals(stored(fv, 1))
    # a Spark-made dataset read by DuckDB, transformed with its own statistics
    for got, expected in zip(fv.get_training_data(2), duckdb_parts, strict=True):
        if isinstance(expected, pd.DataFrame):
            assert_frames_equal(got, expected)
        else:
            pd.testing.assert_series_equal(got, expected)
    # a DuckDB-made dataset read by Spark: X and y line up row by row, value for value
    x, y = fv.get_training_data(1, split="validation", engine="spark")
    x_expected, y_expected = fv.get_training_data(1, split="validation")
    pd.testing.assert_frame_equal(x.toArrow().to_pandas(), x_expected)
    assert y.toArrow().column("is_fraud").to_pylist() == y_expected.tolist()


def test_time_split_batch_data_and_rows_with_labels(spark_project, groups) -> None:
    fv = make_view(spark_project, groups)
    fv.train_test_split(split="time", test_start=at(35))  # version 1
    version, rows = fv.create_training_data(end_time=at(36), engine="spark")  # version 2, unsplit
    assert version == 2 and fv.training_dataset(2).row_counts == {"total": 52, "train": 52}
    expected_rows = fv.get_training_data(2)
    got_rows = rows.toArrow().to_pandas()
    assert_frames_equal(got_rows[list(expected_rows[0].columns)], expected_rows[0])
    assert got_rows["is_fraud"].tolist() == expected_rows[1].tolist()
    fv.train_test_split(split="time", test_start=at(35), engine="spark")  # version 3
    assert stored(fv, 3).equals(stored(fv, 1))
    assert fv.training_dataset(3).row_counts == {"total": 60, "train": 50, "test": 10}
    # batch data: the latest data of every group, transformed with version 1's statistics
    for keys, order in ((True, True), (False, True)):
        options = {"start_time": at(20), "with_keys": keys, "training_dataset_version": 1, "order": order}
        got = fv.get_batch_data(engine="spark", **options).toArrow()
        expected = fv.get_batch_data(return_type="arrow", **options)
        assert got.schema == expected.schema  # NaN (card 8 has no profile) equals NaN below
        pd.testing.assert_frame_equal(got.to_pandas(), expected.to_pandas())


def test_bad_ranges_and_splits_record_nothing(spark_project, groups) -> None:
    fv = make_view(spark_project, groups)
    offline = Path(spark_project.backends.offline.url)
    tables = set(os.listdir(offline))
    with pytest.raises(ValidationError, match="has no spine rows between"):
        fv.create_training_data(start_time=at(500), engine="spark")
    with pytest.raises(ValidationError, match="leaves the test side empty"):
        fv.train_test_split(split="time", test_start=at(900), engine="spark")
    with pytest.raises(ValidationError, match="start_time must be a tz-aware datetime"):
        fv.create_training_data(start_time=at(1).replace(tzinfo=None), engine="spark")
    assert fv.training_dataset_versions() == []
    assert set(os.listdir(offline)) == tables  # no training-dataset table was left behind
