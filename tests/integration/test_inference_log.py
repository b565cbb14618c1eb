"""The inference log of an enriched deployment over HTTP: one row per predicted row with the
request's key, the untransformed features as served (passed features applied), model and outputs
(what monitoring and the label join read)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import create_app
from fti.testing.serving import running_server


def test_an_enriched_deployment_logs_keys_and_raw_features(tmp_path: Path) -> None:
    project = fti.connect(home=tmp_path / "home")
    fs = project.feature_store
    cards = fs.get_or_create_feature_group("cards", primary_key=["cc_num"], online_enabled=True)
    rng = np.random.default_rng(0)
    n = 60
    cards.insert(
        pd.DataFrame(
            {
                "cc_num": np.arange(n),
                "amount_avg": rng.normal(50, 20, n),
                "city": [["oslo", "lima", "rome"][i % 3] for i in range(n)],
                "is_fraud": (np.arange(n) % 3 == 0).astype(np.int64),
            }
        )
    )
    fv = fs.get_or_create_feature_view(
        "cards_view",
        query=cards.select(["amount_avg", "city", "is_fraud"]),
        labels=["is_fraud"],
        transformations={"amount_avg": "standard_scaler", "city": "one_hot_encoder"},
    )
    x_train, _, y_train, _ = fv.train_test_split(test_size=0.2, seed=1)
    model = LogisticRegression().fit(x_train.to_numpy(), y_train.to_numpy().ravel())
    project.model_registry.register(
        "fraud", model, feature_view=fv, training_dataset_version=1, input_example=x_train.head(5)
    )
    project.serving.deploy("fraud", model="fraud", enrich=True, log_requests=True)
    body = {
        "id": "req-7",
        "inputs": [
            {"name": "cc_num", "shape": [2], "datatype": "INT64", "data": [4, 5]},
            {"name": "amount_avg", "shape": [2], "datatype": "FP64", "data": [999.0, 1.5]},
        ],
    }
    app = create_app(project, poll_interval_s=0.2)
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        response = client.post("/v2/models/fraud/infer", json=body)
        assert response.status_code == 200, response.text
        logger = app.state.fti.request_logger
        deadline = time.monotonic() + 20
        while logger.written < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    log = fs.get_feature_group("fraud_inference_log").read().sort_values("row", ignore_index=True)
    stored = cards.read().set_index("cc_num")
    assert log["request_id"].tolist() == ["req-7", "req-7"] and log["row"].tolist() == [0, 1]
    assert log["cc_num"].tolist() == [4, 5]
    assert log["amount_avg"].tolist() == [999.0, 1.5]  # passed features, untransformed
    assert log["city"].tolist() == [stored.loc[4, "city"], stored.loc[5, "city"]]  # looked up, not one-hot
    assert (log["model_name"] == "fraud").all() and (log["model_version"] == 1).all()
    assert log["variant"].isna().all()
    proba = np.array(response.json()["outputs"][1]["data"]).reshape(2, 2)
    np.testing.assert_allclose(log[["predict_proba_0", "predict_proba_1"]].to_numpy(), proba, atol=1e-9)
    assert str(log["timestamp"].dtype) == "datetime64[us, UTC]"

    # a monitor of the deployment: the server exports its latest statistics to Prometheus
    mon = project.monitoring.create_monitor("fraud_watch", deployment="fraud", window="1d")
    day = log["timestamp"].iloc[0].floor("D").to_pydatetime()
    result = mon.run(day, day + timedelta(days=1))
    assert result.rows == 2
    amount = next(o for o in result.outcomes if o.column == "amount_avg" and o.kind == "drift")
    with (
        running_server(create_app(project, poll_interval_s=0.1)) as url,
        httpx.Client(base_url=url) as client,
    ):
        deadline = time.monotonic() + 20
        text = ""
        while "fti_monitor_drift_statistic{" not in text and time.monotonic() < deadline:
            text = client.get("/metrics").text
            time.sleep(0.1)
    labels = f'column="amount_avg",monitor="fraud_watch",source="fraud",test="{amount.test}"'
    line = next(x for x in text.splitlines() if x.startswith("fti_monitor_drift_statistic{") and labels in x)
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(amount.statistic)
    drifted = 1.0 if amount.drifted else 0.0
    assert (
        f'fti_monitor_drifted{{column="amount_avg",monitor="fraud_watch",source="fraud"}} {drifted}' in text
    )
    assert 'fti_monitor_dataset_drift{monitor="fraud_watch",source="fraud"}' in text
    project.close()
