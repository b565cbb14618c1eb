"""``fg.insert(spark_df)``: the same commits, rows, statistics, validation outcomes and online rows
as an insert of the same data as pandas; every rejected or killed insert commits nothing."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa_pd
import pyarrow as pa
import pytest

from fti.errors import BackendError, ExpectationError, SchemaError, ValidationError
from tests.unit.spark.conftest import cancel_when

pytestmark = pytest.mark.spark
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SUITE = pa_pd.DataFrameSchema(
    {
        "amount": pa_pd.Column(float, [pa_pd.Check.in_range(0, 100), pa_pd.Check.gt(-1)], nullable=True),
        "category": pa_pd.Column(str, [pa_pd.Check.isin(["a", "b", "c"]), pa_pd.Check.str_matches("[a-c]")]),
    }
)


def frame(ids: list[int], hours: list[int], rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "id": np.array(ids, dtype=np.int64),
            "ts": [T0 + timedelta(hours=h) for h in hours],
            "amount": rng.uniform(0, 100, n).round(2),
            "category": rng.choice(["a", "b", "c"], n),
            "flag": rng.random(n) > 0.5,
            "day": [(T0 + timedelta(days=h % 3)).date() for h in hours],
        }
    )


def data_files(fg: Any) -> set[str]:
    path = Path(fg.project.backends.offline.url) / fg.table_name
    return {p for p in os.listdir(path) if p.endswith(".parquet")} if path.exists() else set()


def sorted_rows(fg: Any, as_of: int | None = None) -> pd.DataFrame:
    return fg.read(as_of=as_of).sort_values(["id", "ts"]).reset_index(drop=True)


def test_a_spark_insert_commits_what_a_pandas_insert_commits(spark_project, spark_session) -> None:
    fs = spark_project.feature_store
    options = {"primary_key": ["id"], "event_time": "ts", "online_enabled": True, "expectation_suite": SUITE}
    embedded = fs.get_or_create_feature_group("embedded", **options)
    spark = fs.get_or_create_feature_group("spark", **options)
    rng = np.random.default_rng(3)
    first = frame(list(range(40)), [i % 7 for i in range(40)], rng)
    second = frame([5, 6, 7, 50, 51], [5 % 7, 6 % 7, 9, 1, 2], rng)  # two (key, time) pairs repeat
    second.loc[0, "amount"] = 500.0  # fails in_range under validation="warn"
    for data, validation in ((first, "strict"), (second, "warn")):
        expected = embedded.insert(data, validation=validation)
        got = spark.insert(spark_session.createDataFrame(data), validation=validation)
        assert (got.version, got.rows, got.validation, got.online_rows) == (
            expected.version,
            expected.rows,
            expected.validation,
            expected.online_rows,
        )
        assert got.report == expected.report | {
            "failures": [dict(f, example_rows=[]) for f in (expected.report or {}).get("failures", [])]
        }
    assert spark.features == embedded.features
    for version in (0, 1):  # time travel: both commits
        pd.testing.assert_frame_equal(sorted_rows(spark, version), sorted_rows(embedded, version))
    assert len(sorted_rows(spark)) == 43  # 40 + 5 - 2 replaced
    keys = [{"id": i} for i in (0, 5, 7, 50, 99)]
    assert spark.online_lookup(keys) == embedded.online_lookup(keys)
    assert spark_project.backends.online.applied_version(spark.table_name) == 1
    assert [(c.version, c.rows_inserted, c.validation_status) for c in spark.commits()] == [
        (c.version, c.rows_inserted, c.validation_status) for c in embedded.commits()
    ]
    got_stats, expected_stats = spark.statistics(), embedded.statistics()
    assert got_stats.keys() == expected_stats.keys()
    for column, stats in expected_stats.items():
        for name, value in stats.items():
            if name == "approx_distinct":  # HyperLogLog in both, not the same sketch
                assert abs(got_stats[column][name] - value) <= max(1, 0.1 * value)
            elif name in ("mean", "std") and value is not None:
                assert got_stats[column][name] == pytest.approx(value, rel=1e-12)
            elif name == "histogram":
                assert got_stats[column][name]["counts"] == value["counts"]
                assert got_stats[column][name]["edges"] == pytest.approx(value["edges"], rel=1e-12)
            else:
                assert got_stats[column][name] == value, (column, name)


def test_rejected_inserts_commit_nothing(spark_project, spark_session) -> None:
    fs = spark_project.feature_store
    fg = fs.get_or_create_feature_group(
        "checked", primary_key=["id"], event_time="ts", expectation_suite=SUITE
    )
    rng = np.random.default_rng(5)
    good = frame([1, 2, 3], [0, 1, 2], rng)
    fg.insert(spark_session.createDataFrame(good))
    files, commits = data_files(fg), len(fg.commits())

    def spark_frame(data: pd.DataFrame, **casts: str) -> Any:
        df = spark_session.createDataFrame(data)
        for column, kind in casts.items():
            df = df.withColumn(column, df[column].cast(kind))
        return df

    bad = frame([4, 5], [3, 4], rng)
    cases: list[tuple[Any, type[Exception], str]] = [
        (spark_frame(bad.drop(columns=["flag"])), SchemaError, r"missing column\(s\) \['flag'\]"),
        (spark_frame(bad.assign(extra=1)), SchemaError, r"unexpected column\(s\) \['extra'\]"),
        (spark_frame(bad, amount="string"), SchemaError, "column 'amount' has type string, expected float64"),
        (spark_frame(bad, ts="timestamp_ntz"), SchemaError, "naive timestamps"),
        (spark_frame(bad.drop(columns=["ts"])), SchemaError, r"key column\(s\) \['ts'\] missing"),
        (
            spark_frame(bad.assign(id=[4.0, None]), id="bigint"),
            ValidationError,
            "primary key column 'id' has 1 null value",
        ),
        (
            spark_frame(bad.assign(id=[4, 4], ts=[T0, T0])),
            ValidationError,
            "1 duplicate \\(primary key, event time\\)",
        ),
        (
            spark_frame(bad.assign(category=["a", "z"])),
            ExpectationError,
            r"isin\(\['a', 'b', 'c'\]\) failed for 1 row",
        ),
        (spark_frame(bad).limit(0), ValidationError, "cannot insert an empty dataframe"),
    ]
    for df, error, message in cases:
        with pytest.raises(error, match=message):
            fg.insert(df)
    with pytest.raises(ValidationError, match="validation must be one of"):
        fg.insert(spark_frame(bad), validation="lenient")
    assert data_files(fg) == files and len(fg.commits()) == commits and fg.latest_commit_version() == 0
    # the report of a failed suite is the embedded engine's (pandera's), but for row numbers
    with pytest.raises(ExpectationError) as from_spark:
        fg.insert(spark_frame(bad.assign(category=["a", "z"], amount=[-5.0, 150.0])))
    with pytest.raises(ExpectationError) as from_pandas:
        fg.insert(bad.assign(category=["a", "z"], amount=[-5.0, 150.0]))
    expected = [dict(f, example_rows=[]) for f in from_pandas.value.details["failures"]]
    assert from_spark.value.details["failures"] == expected


def test_a_suite_with_checks_spark_cannot_run_is_refused_before_any_job(spark_project, spark_session) -> None:
    suite = pa_pd.DataFrameSchema({"^amount_.*$": pa_pd.Column(float, pa_pd.Check.ge(0), regex=True)})
    fg = spark_project.feature_store.get_or_create_feature_group(
        "regex", primary_key=["id"], expectation_suite=suite
    )
    df = spark_session.createDataFrame(pd.DataFrame({"id": [1], "amount_x": [1.0]}))
    with pytest.raises(ValidationError, match=re.escape("regex column '^amount_.*$'")):
        fg.insert(df)
    assert fg.insert(df, validation="none").rows == 1  # without the suite it goes in


def test_a_first_insert_fixes_the_schema_only_when_it_commits(spark_project, spark_session) -> None:
    fg = spark_project.feature_store.get_or_create_feature_group("fresh", primary_key=["id"], event_time="ts")
    df = spark_session.createDataFrame(
        pa.table(
            {
                "id": pa.array([1, 1], pa.int32()),
                "ts": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
                "x": pa.array([1.5, 2.5], pa.float32()),
            }
        )
    )
    with pytest.raises(ValidationError, match="duplicate"):
        fg.insert(df)
    assert fg.features is None and fg.latest_commit_version() is None
    fg.insert(df.limit(1))
    assert [(f.name, f.dtype) for f in fg.features or []] == [
        ("id", "int32"),
        ("ts", "timestamp"),
        ("x", "float32"),
    ]
    assert fg.read_arrow().schema.field("x").type == pa.float32()
    later = spark_session.createDataFrame(pd.DataFrame({"id": [2], "ts": [T0], "x": [3]}))  # int64 -> widened
    with pytest.raises(SchemaError, match="column 'id' has type bigint, expected int32"):
        fg.insert(later)
    assert fg.insert(later.withColumn("id", later["id"].cast("int"))).rows == 1


def test_a_killed_insert_commits_nothing_and_leaves_no_files(
    spark_project, spark_session, slow_frame
) -> None:
    fg = spark_project.feature_store.get_or_create_feature_group(
        "killed", primary_key=["id"], event_time="ts"
    )
    rng = np.random.default_rng(9)
    fg.insert(frame(list(range(10)), [0] * 10, rng))
    files = data_files(fg)
    data = pa.Table.from_pandas(frame(list(range(100, 180)), [1] * 80, rng), preserve_index=False)
    slow = slow_frame(data, 4, 3.0)  # two executors: two tasks at a time, 3 s each
    watcher = cancel_when(spark_session, "io.py")  # the write job, once a task wrote its file
    try:
        with pytest.raises(BackendError, match="nothing was committed") as killed:
            fg.insert(slow)
    finally:
        watcher.stop.set()  # type: ignore[attr-defined]
    watcher.join(5)
    assert watcher.cancelled  # type: ignore[attr-defined]
    assert "cancel" in str(killed.value).lower()
    assert fg.latest_commit_version() == 0 and len(fg.commits()) == 1
    assert data_files(fg) == files  # the files the finished tasks wrote were deleted
    assert len(fg.read()) == 10
