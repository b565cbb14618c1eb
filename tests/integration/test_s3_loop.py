"""The whole FTI loop with the offline store and the artifact store on S3 (moto's server on
loopback, started by the test setup): feature group insert, read and time travel, training data,
register and load a model, batch scoring, serving; S3 failures as typed errors naming the setting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import fti
from fti.errors import BackendError
from fti.serving.app import create_app
from fti.testing.servers import S3Server
from fti.testing.serving import running_server

pytestmark = pytest.mark.s3
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def s3_settings(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    bucket = f"fti-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    # credentials come from the environment (or a secret), as on AWS: delta-rs and s3fs read them
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    yield {
        "offline_url": f"s3://{bucket}/offline",
        "artifacts_url": f"s3://{bucket}/artifacts",
        "s3_endpoint_url": s3_server.endpoint_url,
        "s3_region": s3_server.region,
        "s3_allow_http": True,
        "bucket": bucket,
    }
    import s3fs

    # fsspec caches filesystems by their arguments, not by the environment they read credentials
    # from: later tests must not get one holding these
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def project(tmp_path: Path, s3_settings: dict[str, object]) -> Iterator[fti.Project]:
    settings = {k: v for k, v in s3_settings.items() if k != "bucket"}
    with fti.connect(home=tmp_path / "home", **settings) as proj:
        yield proj


def _transactions(start: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    amount = rng.normal(50, 20, n)
    return pd.DataFrame(
        {
            "tid": np.arange(start, start + n),
            "ts": [T0 + timedelta(hours=i) for i in range(start, start + n)],
            "amount": amount,
            "hour": (np.arange(start, start + n) % 24).astype(np.int64),
            "is_fraud": (amount > 60).astype(np.int64),
        }
    )


def test_the_fti_loop_on_s3(
    project: fti.Project, s3_server: S3Server, s3_settings: dict[str, object]
) -> None:
    import s3fs

    fs = project.feature_store
    tx = fs.get_or_create_feature_group("transactions", primary_key=["tid"], event_time="ts")
    tx.insert(_transactions(0, 120))
    first = tx.commits()[-1]
    tx.insert(_transactions(120, 60))
    assert len(tx.read()) == 180
    assert len(tx.read(as_of=first.version)) == 120  # time travel on S3
    objects = s3fs.S3FileSystem(**s3_server.storage_options()).ls(f"{s3_settings['bucket']}/offline")  # type: ignore[arg-type]
    assert any("transactions" in o for o in objects)  # the table is on S3, not on local disk
    assert not (Path(project.settings.home) / "offline").exists()

    fv = fs.get_or_create_feature_view(
        "fraud_view", query=tx.select(["amount", "hour", "is_fraud"]), labels=["is_fraud"]
    )
    x_train, _, y_train, _ = fv.train_test_split(test_size=0.25, seed=1)
    names = fv.feature_names()
    model = LogisticRegression().fit(x_train[names], y_train)
    mr = project.model_registry
    mv = mr.register(
        "fraud",
        model,
        feature_view=fv,
        training_dataset_version=fv.last_training_dataset_version,
        input_example=x_train[names].head(3),
    )
    mr.set_alias("fraud", mv.version, "production")
    loaded = mr.get_model("fraud@production").load()  # artifacts read back from S3, digests checked
    np.testing.assert_array_equal(loaded.predict(x_train[names]), model.predict(x_train[names]))

    result = fti.batch.score(
        project,
        model="fraud@production",
        start_time=T0,
        end_time=T0 + timedelta(hours=180),
        output="fraud_predictions",
    )
    assert result.rows == 180
    assert len(result.feature_group.read()) == 180

    project.serving.deploy("fraud", model="fraud@production", log_requests=True)
    rows = x_train[names].head(4)
    body = {
        "id": "s3-1",
        "inputs": [
            {
                "name": n,
                "shape": [4],
                "datatype": "FP64" if rows[n].dtype.kind == "f" else "INT64",
                "data": rows[n].tolist(),
            }
            for n in names
        ],
    }
    with running_server(create_app(project, poll_interval_s=0.2)) as url:
        response = httpx.post(f"{url}/v2/models/fraud/infer", json=body, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == model.predict(rows).tolist()
    log = fs.get_feature_group("fraud_inference_log")  # flushed to S3 when the server stopped
    assert (log.read()["request_id"] == "s3-1").sum() == 4

    # upkeep and deletion on S3: delta-rs optimize, then fsspec removes the table's objects
    assert tx.compact() is not None and len(tx.read()) == 180
    scratch = fs.get_or_create_feature_group("scratch", primary_key=["tid"], event_time="ts")
    scratch.insert(_transactions(0, 3))
    bucket = s3fs.S3FileSystem(**s3_server.storage_options())  # type: ignore[arg-type]
    before = bucket.ls(f"{s3_settings['bucket']}/offline", refresh=True)
    scratch.delete()
    after = bucket.ls(f"{s3_settings['bucket']}/offline", refresh=True)
    assert len(after) == len(before) - 1 and not any("scratch" in o for o in after)


def test_s3_errors_are_backend_errors_naming_the_setting(
    tmp_path: Path, s3_server: S3Server, s3_settings: dict[str, object]
) -> None:
    settings = {k: v for k, v in s3_settings.items() if k != "bucket"}
    missing = f"fti-missing-{uuid.uuid4().hex[:8]}"
    no_bucket = {**settings, "offline_url": f"s3://{missing}/offline", "artifacts_url": f"s3://{missing}/art"}
    with fti.connect(home=tmp_path / "no-bucket", **no_bucket) as proj:
        group = proj.feature_store.get_or_create_feature_group("t", primary_key=["tid"], event_time="ts")
        with pytest.raises(BackendError) as refused:
            group.insert(_transactions(0, 5))
        assert "FTI_OFFLINE_URL" in refused.value.message and missing in refused.value.message
        with pytest.raises(BackendError) as no_artifacts:
            proj.model_registry.register("m", LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
        assert "FTI_ARTIFACTS_URL" in no_artifacts.value.message
        assert proj.model_registry.list_models() == []  # the failed registration left no version
        # the failed first insert fixed no schema: once the bucket exists, another schema is accepted
        s3_server.create_bucket(missing)
        other = _transactions(0, 5).rename(columns={"amount": "value"})
        group = proj.feature_store.get_feature_group("t")
        group.insert(other)
        assert list(group.read().sort_values("tid")["value"]) == list(other["value"])
    unreachable = {**settings, "s3_endpoint_url": "http://127.0.0.1:9"}
    with fti.connect(home=tmp_path / "unreachable", **unreachable) as proj:
        group = proj.feature_store.get_or_create_feature_group("t", primary_key=["tid"], event_time="ts")
        with pytest.raises(BackendError) as down:
            group.insert(_transactions(0, 5))
        assert "FTI_S3_ENDPOINT_URL" in down.value.message


def test_credentials_from_an_fti_secret(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import s3fs

    from fti.errors import NotFoundError, ValidationError
    from fti.pipelines.executor import child_environment

    # no credentials anywhere but in the secret: without it, S3 refuses every store
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    s3fs.S3FileSystem.clear_instance_cache()
    bucket = f"fti-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    settings = {
        "offline_url": f"s3://{bucket}/offline",
        "artifacts_url": f"s3://{bucket}/artifacts",
        "s3_endpoint_url": s3_server.endpoint_url,
        "s3_region": s3_server.region,
        "s3_allow_http": True,
    }
    with fti.connect(home=tmp_path / "plain", **settings) as proj:
        group = proj.feature_store.get_or_create_feature_group("t", primary_key=["tid"], event_time="ts")
        with pytest.raises(BackendError, match="FTI_S3_SECRET to a secret holding them"):
            group.insert(_transactions(0, 5))

    home = tmp_path / "home"
    with fti.connect(home=home, s3_secret="s3-test", **settings) as proj:
        # the secret is read when a store on s3:// is opened: a missing one says how to set it
        group = proj.feature_store.get_or_create_feature_group("t", primary_key=["tid"], event_time="ts")
        with pytest.raises(NotFoundError, match=r"secret 's3-test' does not exist.*fti secrets set s3-test"):
            group.insert(_transactions(0, 5))
        proj.secrets.set(
            "s3-test",
            json.dumps(
                {"aws_access_key_id": s3_server.access_key, "aws_secret_access_key": s3_server.secret_key}
            ),
        )
        group.insert(_transactions(0, 40))
        assert len(group.read()) == 40
        model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
        mv = proj.model_registry.register("m", model)
        np.testing.assert_array_equal(proj.model_registry.get_model("m", 1).load().predict([[0.9]]), [1])
        stored = s3fs.S3FileSystem(**s3_server.storage_options())  # type: ignore[arg-type]
        assert stored.ls(f"{bucket}/offline") and stored.ls(f"{bucket}/artifacts/{mv.artifact_prefix}")
        # a pipeline run writes to the same stores: it gets the secret's credentials as AWS_*
        env = child_environment(proj)
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
            s3_server.access_key,
            s3_server.secret_key,
        )
        assert env["FTI_S3_SECRET"] == ""  # the run does not read the secret again
        assert "s3-test" in proj.settings.describe()["s3_secret"]
        assert s3_server.secret_key not in json.dumps(proj.settings.describe())

    # a value that is not a JSON object of credentials is refused without being shown
    for value, message in (
        ("not json", "must be a JSON object of S3 credentials"),
        (json.dumps({"aws_access_key_id": "k"}), r"lacks \['secret_access_key'\]"),
        (
            json.dumps({"aws_access_key_id": "k", "aws_secret_access_key": "s", "password": "p"}),
            "unknown field",
        ),
    ):
        with fti.connect(home=home, s3_secret="s3-bad", **settings) as proj:
            proj.secrets.set("s3-bad", value)
            with pytest.raises(ValidationError, match=message) as refused:
                proj.feature_store.get_feature_group("t").read()
            assert value not in refused.value.message
    s3fs.S3FileSystem.clear_instance_cache()
