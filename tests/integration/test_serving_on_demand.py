"""On-demand features in the model server: an enriched deployment takes the key and the request
fields, computes the on-demand features with the view's functions (the training-data path), and
answers 400 for a bad request field and 500 naming the function when one fails, then goes on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import create_app
from fti.testing.serving import running_server
from tests.unit.features import _on_demand_functions as fns

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[dict[str, Any]]:
    project = fti.connect(home=tmp_path / "home")
    fs = project.feature_store
    tx = fs.get_or_create_feature_group("tx", primary_key=["cc_num"], event_time="ts", online_enabled=True)
    cards = fs.get_or_create_feature_group("cards", primary_key=["cc_num"], online_enabled=True)
    rng = np.random.default_rng(1)
    n = 80
    tx.insert(
        pd.DataFrame(
            {
                "cc_num": np.arange(n) % 20,
                "ts": [T0 + timedelta(minutes=i) for i in range(n)],
                "amount": rng.lognormal(3, 1, n),
                "lat": rng.uniform(30, 50, n),
                "lon": rng.uniform(-120, -70, n),
                "is_fraud": (np.arange(n) % 4 == 0).astype(np.int64),
            }
        )
    )
    cards.insert(
        pd.DataFrame(
            {
                "cc_num": np.arange(20),
                "home_lat": rng.uniform(30, 50, 20),
                "home_lon": rng.uniform(-120, -70, 20),
                "limit": rng.uniform(500, 5000, 20),
            }
        )
    )
    fv = fs.get_or_create_feature_view(
        "tx_view",
        query=tx.select(["amount", "lat", "lon", "is_fraud"]).join(
            cards.select_all(include_primary_key=False)
        ),
        labels=["is_fraud"],
        on_demand=[fns.log_amount, fns.distance],
        request_fields=["amount", "lat", "lon"],
        transformations={"limit": "standard_scaler"},
    )
    x, y = fv.create_training_data()[1].drop(columns="is_fraud"), fv.get_training_data(1)[1]
    assert list(x.columns) == ["amount", "limit", "log_amount", "distance"]
    model = LogisticRegression(max_iter=5000).fit(x.to_numpy(), y.to_numpy())
    project.model_registry.register(
        "m", model, feature_view=fv, training_dataset_version=1, input_example=x.head(3)
    )
    project.serving.deploy("m", model="m", enrich=True)
    yield {"project": project, "fv": fv, "model": model}
    project.close()


def _request(cc_num: int, **fields: Any) -> dict[str, Any]:
    inputs = [{"name": "cc_num", "shape": [1], "datatype": "INT64", "data": [cc_num]}]
    for name, value in fields.items():
        datatype = "BYTES" if isinstance(value, str) else "FP64"
        inputs.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    return {"inputs": inputs}


def test_the_server_computes_on_demand_features_from_the_request(deployed: dict[str, Any]) -> None:
    fv, model, project = deployed["fv"], deployed["model"], deployed["project"]
    live = {"amount": 42.5, "lat": 47.6, "lon": -122.3}
    vector = fv.get_feature_vector({"cc_num": 3}, passed_features=live)
    assert vector[2] == np.log1p(42.5)  # computed from the request, not the stored transaction
    expected = model.predict_proba(np.array([vector]))
    in_process = project.serving.get("m").predict({"cc_num": 3, **live})
    np.testing.assert_allclose(in_process["predict_proba"], expected, atol=1e-6)

    with running_server(create_app(project, poll_interval_s=0.2)) as url, httpx.Client(base_url=url) as c:
        meta = c.get("/v2/models/m").json()
        assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
            ("cc_num", "INT64"), ("amount", "FP64"), ("lat", "FP64"), ("lon", "FP64")
        ]  # fmt: skip
        ok = c.post("/v2/models/m/infer", json=_request(3, **live))
        assert ok.status_code == 200, ok.text
        proba = {o["name"]: o for o in ok.json()["outputs"]}["predict_proba"]
        np.testing.assert_allclose(np.array(proba["data"]).reshape(proba["shape"]), expected, atol=1e-6)

        missing = c.post("/v2/models/m/infer", json=_request(3, amount=1.0, lat=40.0))
        assert missing.status_code == 400
        assert "request field(s) ['lon'] missing" in missing.json()["error"]
        wrong_type = c.post("/v2/models/m/infer", json=_request(3, amount=1.0, lat="north", lon=-80.0))
        assert wrong_type.status_code == 400
        assert wrong_type.json()["error"] == "input 'lat' is a float64 column; send numbers, not BYTES"
        derived = c.post("/v2/models/m/infer", json=_request(3, **live, distance=3.0))
        assert derived.status_code == 400 and "on-demand feature(s) ['distance']" in derived.json()["error"]

        failing = c.post("/v2/models/m/infer", json=_request(3, amount=-5.0, lat=40.0, lon=-80.0))
        assert failing.status_code == 500
        body = failing.json()
        assert body["error"].startswith(
            "on-demand function 'tests.unit.features._on_demand_functions:log_amount' raised ValueError: "
            "amounts are never negative on inputs {'amount': [-5.0]}"
        )
        again = c.post("/v2/models/m/infer", json=_request(3, **live))  # the server goes on serving
        assert again.status_code == 200 and again.json()["outputs"] == ok.json()["outputs"]
