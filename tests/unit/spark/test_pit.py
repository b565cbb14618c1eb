"""The Spark engine's point-in-time join against the DuckDB engine and the brute-force oracle.

The oracle property tests of ``tests/unit/features/test_pit.py`` (random groups, equal
timestamps, missing and null keys, out-of-order arrival, ``max_age``, three joined groups) run
against :func:`fti.spark.pit.join` too: its result must equal DuckDB's row for row and value for
value (types included) and the brute force's. Few examples: every one is a Spark job.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fti.features import pit as duckdb_pit
from fti.features.query import Query
from fti.spark import io
from fti.spark import pit as spark_pit
from tests.unit.features.test_pit import (
    T0,
    TS,
    ages,
    brute_force,
    datasets,
    groups,
    hours,
    keys1,
    result_rows,
)

pytestmark = pytest.mark.spark
__all__ = ["groups"]  # the feature groups of the DuckDB tests (a fixture)

SPARK_PROPERTY = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def spark_join(spark: Any, query: Query, tables: list[pa.Table], **options: Any) -> pa.Table:
    frames = [spark.createDataFrame(table) for table in tables]
    return spark_pit.join(query, frames, **options).toArrow()


def assert_same(spark_result: pa.Table, duckdb_result: pa.Table) -> None:
    assert spark_result.schema == duckdb_result.schema.remove_metadata()
    assert result_rows(spark_result) == result_rows(duckdb_result)


@SPARK_PROPERTY
@given(data=datasets(), age_a=ages, age_b=ages)
def test_spark_join_equals_duckdb_and_brute_force_over_three_groups(
    spark_session, groups, data, age_a, age_b
) -> None:
    query = (
        groups["spine"]
        .select(["k1", "label"])
        .join(groups["a"].select(["x", "y"]), on=["k1"], prefix="a_", max_age=age_a)
        .join(
            groups["b"].select_all(include_primary_key=False, include_event_time=False),
            on="k2",
            prefix="b_",
            max_age=age_b,
        )
        .join(groups["c"].select_all(include_primary_key=False, include_event_time=False), on=["k1"])
    )
    tables = [data["spine"], data["a"], data["b"], data["c"]]
    result = spark_join(spark_session, query, tables)
    assert result.column_names == ["id", "ts", "k1", "label", "a_x", "a_y", "b_x", "z"]
    assert_same(result, duckdb_pit.run(query, tables))
    assert result_rows(result) == brute_force(query, tables)


@SPARK_PROPERTY
@given(data=datasets(), start=hours, length=st.integers(1, 8))
def test_spark_join_with_time_range_equals_duckdb(spark_session, groups, data, start, length) -> None:
    query = groups["spine"].select(["label"]).join(groups["a"].select(["x"]), on=["k1"])
    tables = [data["spine"], data["a"]]
    since, until = T0 + timedelta(hours=start), T0 + timedelta(hours=start + length)
    result = spark_join(spark_session, query, tables, start_time=since, end_time=until)
    assert_same(result, duckdb_pit.run(query, tables, start_time=since, end_time=until))
    assert result_rows(spark_join(spark_session, query, tables, start_time=since)) == brute_force(
        query, tables, since
    )


def test_exact_boundaries_of_asof_and_max_age(spark_session, groups) -> None:
    spine = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "ts": pa.array([T0 + timedelta(hours=h) for h in (2, 5, 1)], TS),
            "k1": pa.array([7, 7, 7], pa.int64()),
            "k2": pa.array(["p"] * 3),
            "label": pa.array([0, 0, 0], pa.int64()),
        }
    )
    a = pa.table(
        {
            "k1": pa.array([7, 7], pa.int64()),
            "ts": pa.array([T0 + timedelta(hours=2), T0 + timedelta(hours=3)], TS),
            "x": pa.array([1.0, 2.0]),
            "y": pa.array(["u", "v"]),
        }
    )
    query = groups["spine"].select(["label"]).join(groups["a"].select(["x"]), max_age=timedelta(hours=2))
    rows = {r["id"]: r["x"] for r in spark_join(spark_session, query, [spine, a]).to_pylist()}
    # equal time counts as known; 2 h old is within max_age; a later value never leaks back
    assert rows == {3: None, 1: 1.0, 2: 2.0}


def test_spine_without_event_time_takes_the_latest_row_per_key(spark_session, sqlite_project, groups) -> None:
    import fti

    entities = sqlite_project.feature_store.get_or_create_feature_group(
        "entities", primary_key=["k1"], features=[fti.Feature("k1", "int64"), fti.Feature("w", "string")]
    )
    spine = pa.table({"k1": pa.array([1, 2, 3, None], pa.int64()), "w": pa.array(["u", "v", "w", "n"])})
    a = pa.table(
        {
            "k1": pa.array([1, 1, 2], pa.int64()),
            "ts": pa.array([T0 + timedelta(hours=9), T0, T0], TS),
            "x": pa.array([9.0, 0.0, 2.0]),
            "y": pa.array(["late", "early", "only"]),
        }
    )
    c = pa.table({"k1": pa.array([3], pa.int64()), "z": pa.array([0.5])})
    query = entities.select(["w"]).join(groups["a"].select(["x", "y"])).join(groups["c"].select_all())
    result = spark_join(spark_session, query, [spine, a, c], order=False)
    expected = duckdb_pit.run(query, [spine, a, c], order=False)
    key = lambda row: (row[0] is None, row[0])  # noqa: E731
    assert sorted(result_rows(result), key=key) == sorted(result_rows(expected), key=key)
    assert sorted(result_rows(result), key=key) == [
        (1, "u", 9.0, "late", None),
        (2, "v", 2.0, "only", None),
        (3, "w", None, None, 0.5),
        (None, "n", None, None, None),
    ]


_case = iter(range(10_000))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    spine_rows=st.lists(st.tuples(hours, keys1), min_size=1, max_size=12),
    batches=st.lists(
        st.lists(st.tuples(keys1, hours, st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=8),
        min_size=1,
        max_size=3,
    ),
    age=ages,
)
def test_spark_join_over_delta_versions_read_by_file_list(
    spark_session, sqlite_project, spine_rows, batches, age
) -> None:
    """Out-of-order inserts into real Delta tables (one commit per batch, upserts rewriting files):
    Spark reads each version by delta-rs's file list and joins as DuckDB does, at every version."""
    fs = sqlite_project.feature_store
    case = next(_case)
    spine = fs.get_or_create_feature_group(f"s{case}", primary_key=["id"], event_time="ts")
    right = fs.get_or_create_feature_group(f"r{case}", primary_key=["k1"], event_time="ts")
    spine.insert(
        pd.DataFrame(
            {
                "id": range(len(spine_rows)),
                "ts": [T0 + timedelta(hours=h) for h, _ in spine_rows],
                "k1": [k for _, k in spine_rows],
            }
        )
    )
    for batch in batches:
        unique = {(k, h): x for k, h, x in batch}
        right.insert(
            pd.DataFrame(
                {
                    "k1": [k for k, _ in unique],
                    "ts": [T0 + timedelta(hours=h) for _, h in unique],
                    "x": list(unique.values()),
                }
            )
        )
    query = spine.select(["k1"]).join(right.select(["x"]), max_age=age)
    offline = sqlite_project.backends.offline
    spine_files = io.snapshot(io.table(sqlite_project, spine.table_name))
    for version in range(len(batches)):  # time travel: every version of the joined group
        snapshot = io.snapshot(io.table(sqlite_project, right.table_name), version)
        assert snapshot is not None and spine_files is not None
        frames = [io.read(spark_session, spine_files), io.read(spark_session, snapshot)]
        result = spark_pit.join(query, frames).toArrow()
        sources = [
            offline.dataset(spine.table_name, version=0),
            offline.dataset(right.table_name, version=version),
        ]
        assert_same(result, duckdb_pit.run(query, sources))
