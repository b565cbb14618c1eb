"""Feature enrichment: the server takes primary keys, looks up online features through the feature
view (same code path as get_feature_vector) and predicts; a missing key is a 404 naming the key."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture
def enriched(tmp_path: Path) -> Iterator[dict[str, Any]]:
    proj = fti.connect(home=tmp_path / "home")
    fs = proj.feature_store
    cards = fs.get_or_create_feature_group("cards", primary_key=["cc_num"], online_enabled=True)
    rng = np.random.default_rng(0)
    n = 60
    cards.insert(
        pd.DataFrame(
            {
                "cc_num": np.arange(n),
                "amount_avg": rng.normal(50, 20, n),
                "n_tx": rng.integers(0, 30, n),
                "is_fraud": (np.arange(n) % 3 == 0).astype(np.int64),
            }
        )
    )
    fv = fs.get_or_create_feature_view(
        "cards_view",
        query=cards.select(["amount_avg", "n_tx", "is_fraud"]),
        labels=["is_fraud"],
        transformations={"amount_avg": "standard_scaler"},
    )
    x_train, _, y_train, _ = fv.train_test_split(test_size=0.2, seed=1)
    model = LogisticRegression().fit(x_train.to_numpy(), y_train.to_numpy().ravel())
    proj.model_registry.register(
        "fraud", model, feature_view=fv, training_dataset_version=1, input_example=x_train.head(5)
    )
    assert fv.feature_names() == ["amount_avg", "n_tx"]
    proj.serving.deploy("fraud", model="fraud", enrich=True, log_requests=True)
    yield {"project": proj, "fv": fv, "model": model}
    proj.close()


def _keys(*keys: int, **passed: list[Any]) -> dict[str, Any]:
    inputs = [{"name": "cc_num", "shape": [len(keys)], "datatype": "INT64", "data": list(keys)}]
    for name, values in passed.items():
        inputs.append({"name": name, "shape": [len(values)], "datatype": "INT64", "data": values})
    return {"inputs": inputs}


def test_enriched_inference_over_http_and_in_process(enriched: dict[str, Any]) -> None:
    fv, model, proj = enriched["fv"], enriched["model"], enriched["project"]
    vectors = fv.get_feature_vectors([{"cc_num": 3}, {"cc_num": 7}], return_type="numpy")
    expected = model.predict_proba(vectors)
    in_process = proj.serving.get("fraud").predict({"cc_num": [3, 7]})
    np.testing.assert_allclose(in_process["predict_proba"], expected, atol=1e-5)

    with running_server(create_app(proj, poll_interval_s=0.2)) as url, httpx.Client(base_url=url) as c:
        meta = c.get("/v2/models/fraud").json()
        assert meta["inputs"] == [{"name": "cc_num", "datatype": "INT64", "shape": [-1]}]
        assert meta["parameters"]["features"] == ["amount_avg", "n_tx"]
        response = c.post("/v2/models/fraud/infer", json=_keys(3, 7))
        assert response.status_code == 200, response.text
        proba = {o["name"]: o for o in response.json()["outputs"]}["predict_proba"]
        np.testing.assert_allclose(np.array(proba["data"]).reshape(proba["shape"]), expected, atol=1e-5)

        passed = c.post("/v2/models/fraud/infer", json=_keys(3, n_tx=[29]))
        with_passed = fv.get_feature_vectors(
            [{"cc_num": 3}], passed_features={"n_tx": 29}, return_type="numpy"
        )
        assert passed.json()["outputs"][0]["data"] == model.predict(with_passed).tolist()

        missing = c.post("/v2/models/fraud/infer", json=_keys(3, 999))
        assert missing.status_code == 404
        assert "{'cc_num': 999}" in missing.json()["error"]
        no_key = c.post(
            "/v2/models/fraud/infer", json=_keys(n_tx=[1]) | {"inputs": _keys(n_tx=[1])["inputs"][1:]}
        )
        assert no_key.status_code == 400 and "missing key input(s) ['cc_num']" in no_key.json()["error"]
        unknown = c.post("/v2/models/fraud/infer", json=_keys(3, zz=[1]))
        assert unknown.status_code == 400 and "unknown input(s) ['zz']" in unknown.json()["error"]
        assert c.post("/v2/models/fraud/infer", json=_keys(4)).status_code == 200
