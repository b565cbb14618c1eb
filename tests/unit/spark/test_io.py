"""Delta tables read by delta-rs's file lists and committed by delta-rs, locally and on S3.

The S3 case runs against the test's S3-compatible server: the driver reaches it with delta-rs,
the executors with Arrow's S3 filesystem (their credentials come from their environment).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti.errors import BackendError
from fti.spark import io
from tests.conftest import SPARK_CONF

pytestmark = pytest.mark.spark
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def rows(ids: list[int], x: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "ts": [T0] * len(ids), "x": x})


def test_time_travel_upserts_and_training_data_on_s3(
    s3_server, spark_session, spark_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_server.create_bucket("lake")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)  # delta-rs of the offline store
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    project = fti.connect(
        home=tmp_path,
        offline_url="s3://lake/offline",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_allow_http=True,
        s3_region=s3_server.region,
        spark_master=spark_cluster.master_url,
        spark_conf=SPARK_CONF,
    )
    try:
        fg = project.feature_store.get_or_create_feature_group("g", primary_key=["id"], event_time="ts")
        fg.insert(rows([1, 2, 3], [1.0, 2.0, 3.0]))  # version 0, by delta-rs
        result = fg.insert(spark_session.createDataFrame(rows([3, 4], [30.0, 4.0])))  # version 1, by Spark
        assert (result.version, result.rows) == (1, 2)
        location = io.table(project, fg.table_name)
        assert location.uri == "s3://lake/offline/default__g__v1" and not location.local
        for version, expected in ((0, {1: 1.0, 2: 2.0, 3: 3.0}), (1, {1: 1.0, 2: 2.0, 3: 30.0, 4: 4.0})):
            snapshot = io.snapshot(location, version)
            assert snapshot is not None and snapshot.version == version
            read = io.read(spark_session, snapshot).toArrow()
            assert (
                dict(zip(read.column("id").to_pylist(), read.column("x").to_pylist(), strict=True))
                == expected
            )
            assert fg.read(as_of=version).set_index("id")["x"].to_dict() == expected
        fv = project.feature_store.get_or_create_feature_view(
            "v", query=fg.select(["x"]), transformations={"x": "min_max_scaler"}
        )
        version, frame = fv.create_training_data(engine="spark")
        assert frame.toArrow().column("x").to_pylist() == [0.0, 1 / 29, 1.0, 3 / 29]
        x, _ = fv.get_training_data(version)  # written by Spark on S3, read by DuckDB
        assert x["x"].tolist() == [0.0, 1 / 29, 1.0, 3 / 29]
    finally:
        project.close()


def test_a_conflicting_commit_is_refused_and_its_files_deleted(spark_project, spark_session) -> None:
    fg = spark_project.feature_store.get_or_create_feature_group("c", primary_key=["id"], event_time="ts")
    fg.insert(rows([1, 2], [1.0, 2.0]))
    location = io.table(spark_project, fg.table_name)
    before = io.snapshot(location)
    assert before is not None and len(before.files) == 1
    schema = before.schema
    data = spark_session.createDataFrame(
        pa.Table.from_pandas(rows([5], [5.0]), schema=schema, preserve_index=False)
    )
    first = io.write(data, location, schema)
    second = io.write(data, location, schema)
    assert io.commit(location, schema, first, removed=before.files, read_version=0, operation="test") == 1
    # a second writer that read version 0 and rewrote the same file: the commit conflicts
    with pytest.raises(BackendError, match="nothing was committed"):
        io.commit(location, schema, second, removed=before.files, read_version=0, operation="test")
    table_dir = Path(location.uri)
    assert not any((table_dir / w.path).exists() for w in second)  # deleted again
    assert all((table_dir / w.path).exists() for w in first)
    assert fg.latest_commit_version() == 1 and fg.read()["id"].tolist() == [5]
