"""The three jobs on a real Spark standalone cluster (a master and two workers on loopback) with a
Redis online store, on the fraud example's data: each equals the embedded engine's result.

1. a feature pipeline inserting a Spark DataFrame: validated by the group's expectation suite,
   committed once, materialized to Redis from the executors;
2. point-in-time training data (time split) and batch data;
3. batch scoring, from Python and from ``fti batch score --engine spark``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import fti
from examples.fraud import feature_pipeline, training_pipeline
from examples.fraud.generator import DATA_START
from fti.features import training_data
from tests.conftest import SPARK_CONF

pytestmark = [pytest.mark.spark, pytest.mark.redis, pytest.mark.slow]
CARDS, DAYS = 60, 10
_db = itertools.count(40)


@pytest.fixture(scope="module")
def fraud(
    spark_session: Any, spark_cluster: Any, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[fti.Project, Any]]:
    """The fraud system (features, a trained and promoted model) on Redis, with Spark on the cluster."""
    url = redis_server.url(next(_db) % 64)
    home = tmp_path_factory.mktemp("fraud") / "home"
    project = fti.connect(
        home=home, online_url=url, spark_master=spark_cluster.master_url, spark_conf=SPARK_CONF
    )
    project.backends.online._client.flushdb()  # type: ignore[attr-defined]
    end = DATA_START + timedelta(days=DAYS)
    feature_pipeline.ingest_profiles(project, CARDS)
    feature_pipeline.ingest_transactions(project, DATA_START, end, CARDS)
    training_pipeline.train(project, max_iter=30)
    yield project, end
    project.close()


def test_a_spark_feature_pipeline_validates_commits_and_materializes_to_redis(fraud, spark_session) -> None:
    project, _ = fraud
    groups = feature_pipeline.feature_groups(project)
    embedded = groups.transactions
    spark_group = project.feature_store.get_or_create_feature_group(
        "transactions_spark",
        primary_key=embedded.primary_key,
        event_time=embedded.event_time,
        online_enabled=True,
        expectation_suite=_suite(embedded),
    )
    rows = embedded.read_arrow()
    result = spark_group.insert(spark_session.createDataFrame(rows).repartition(3))
    assert (result.version, result.rows, result.validation) == (0, rows.num_rows, "passed")
    assert result.online_rows == CARDS
    key = [*embedded.key_columns]
    pd.testing.assert_frame_equal(
        spark_group.read().sort_values(key).reset_index(drop=True),
        embedded.read().sort_values(key).reset_index(drop=True),
    )
    cards = [{"cc_num": int(c)} for c in sorted(set(rows.column("cc_num").to_pylist()))]
    assert spark_group.online_lookup(cards) == embedded.online_lookup(cards)  # written by the executors
    assert project.backends.online.applied_version(spark_group.table_name) == 0
    from pyspark.sql import functions as F

    bad = spark_session.createDataFrame(rows.slice(0, 5)).withColumn("is_fraud", F.lit(2).cast("long"))
    with pytest.raises(fti.ExpectationError, match=r"is_fraud: isin\(\[0, 1\]\) failed for 5 row"):
        spark_group.insert(bad)
    assert spark_group.latest_commit_version() == 0


def _suite(group: Any) -> Any:
    import orjson
    import pandera.pandas as pa

    return pa.DataFrameSchema.from_json(orjson.dumps(group.expectation_suite).decode())


def test_training_and_batch_data_equal_the_embedded_engine(fraud) -> None:
    project, end = fraud
    fv = training_pipeline.feature_view(project)
    one = fv.training_dataset(1)  # made by the embedded training pipeline: a time split
    x_train, x_test, y_train, y_test = fv.train_test_split(
        split="time", test_start=one.split["test_start"], engine="spark"
    )
    version = fv.last_training_dataset_version
    two = fv.training_dataset(version)
    assert (two.row_counts, two.input_versions, two.split) == (one.row_counts, one.input_versions, one.split)
    assert two.transformation_stats["provider"] == one.transformation_stats["provider"]
    for name in ("mean", "std"):  # standard_scaler: sums in another order
        assert two.transformation_stats["credit_limit"][name] == pytest.approx(
            one.transformation_stats["credit_limit"][name], rel=1e-12
        )
    assert training_data.read(fv, two).equals(training_data.read(fv, one))  # the same rows, split alike
    expected = fv.get_training_data(1)
    for got, want in zip((x_train, x_test), expected[:2], strict=True):
        frame = got.toArrow().to_pandas()
        assert list(frame.columns) == list(want.columns)
        for column in want.columns:
            if column == "credit_limit":
                np.testing.assert_allclose(frame[column], want[column], rtol=1e-12)
            else:
                pd.testing.assert_series_equal(frame[column], want[column])
    for got, want in zip((y_train, y_test), expected[2:], strict=True):
        assert got.toArrow().column("is_fraud").to_pylist() == want.tolist()
    start = end - timedelta(days=2)
    options = {"start_time": start, "with_keys": True, "training_dataset_version": 1}
    got = fv.get_batch_data(engine="spark", **options).toArrow()
    want = fv.get_batch_data(return_type="arrow", **options)
    assert got.schema == want.schema
    pd.testing.assert_frame_equal(got.to_pandas(), want.to_pandas())  # NaN equals NaN here


def test_batch_predictions_equal_the_embedded_job_from_python_and_the_cli(
    fraud, spark_cluster, monkeypatch
) -> None:
    project, end = fraud
    start = end - timedelta(days=3)
    embedded = fti.batch.score(
        project, "fraud@production", start_time=start, end_time=end, output="preds_embedded"
    )
    spark = fti.batch.score(
        project, "fraud@production", start_time=start, end_time=end, output="preds_spark", engine="spark"
    )
    assert spark.rows == embedded.rows > 0 and spark.scorer == embedded.scorer
    assert spark.commit_versions == [0]

    def predictions(group: Any) -> pd.DataFrame:
        frame = group.read().drop(columns=["scored_at"])
        return frame.sort_values(["cc_num", "datetime"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(predictions(spark.feature_group), predictions(embedded.feature_group))
    from fti.cli.main import cli

    monkeypatch.setenv("FTI_HOME", str(project.settings.home))
    monkeypatch.setenv("FTI_ONLINE_URL", project.settings.resolved_online_url)
    monkeypatch.setenv("FTI_SPARK_MASTER", spark_cluster.master_url)
    result = CliRunner().invoke(
        cli,
        ["--json", "batch", "score", "fraud@production", "--start", start.isoformat(), "--end", end.isoformat(),
         "-o", "preds_cli", "--engine", "spark"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["rows"], out["output"], out["scorer"]) == (embedded.rows, "preds_cli", embedded.scorer)
    cli_group = project.feature_store.get_feature_group("preds_cli")
    pd.testing.assert_frame_equal(predictions(cli_group), predictions(embedded.feature_group))
    # scoring the same range again upserts: the same rows, one more commit
    again = fti.batch.score(
        project, "fraud@production", start_time=start, end_time=end, output="preds_spark", engine="spark"
    )
    assert again.commit_versions == [1]
    pd.testing.assert_frame_equal(predictions(again.feature_group), predictions(embedded.feature_group))
