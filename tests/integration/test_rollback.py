"""One-step rollback under load: v2 trained on feature view v2 (a new feature) is rolled back to
v1; the server hot-swaps, enriches with v1's own feature view version, and no request fails."""

from __future__ import annotations

import threading
import time
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

N = 40


@pytest.fixture
def two_views(tmp_path: Path) -> Iterator[dict[str, Any]]:
    proj = fti.connect(home=tmp_path / "home")
    fs = proj.feature_store
    cards = fs.get_or_create_feature_group("cards", primary_key=["cc_num"], online_enabled=True)
    rng = np.random.default_rng(3)
    cards.insert(
        pd.DataFrame(
            {
                "cc_num": np.arange(N),
                "amount_avg": rng.normal(50, 20, N),
                "n_tx": rng.integers(0, 30, N),
                "velocity": rng.normal(0, 1, N),
                "is_fraud": (np.arange(N) % 3 == 0).astype(np.int64),
            }
        )
    )
    fv1 = fs.get_or_create_feature_view(
        "cards_view", 1, query=cards.select(["amount_avg", "n_tx", "is_fraud"]), labels=["is_fraud"]
    )
    fv2 = fs.get_or_create_feature_view(
        "cards_view",
        2,
        query=cards.select(["amount_avg", "n_tx", "velocity", "is_fraud"]),
        labels=["is_fraud"],
    )
    mr = proj.model_registry
    models = {}
    for version, fv in ((1, fv1), (2, fv2)):
        x, _, y, _ = fv.train_test_split(test_size=0.2, seed=1)
        models[version] = LogisticRegression().fit(x.to_numpy(), y.to_numpy().ravel())
        mr.register(
            "fraud", models[version], feature_view=fv, training_dataset_version=1, input_example=x.head(3)
        )
    mr.set_alias("fraud", 1, "production")
    mr.set_alias("fraud", 2, "production", reason="adds velocity")
    proj.serving.deploy("fraud", model="fraud@production", enrich=True, log_requests=False)
    yield {"project": proj, "fv": {1: fv1, 2: fv2}, "models": models}
    proj.close()


def test_rollback_serves_v1_with_v1_features_and_fails_no_request(two_views: dict[str, Any]) -> None:
    proj, fvs, models = two_views["project"], two_views["fv"], two_views["models"]
    keys = list(range(N))
    expected = {
        v: models[v].predict_proba(
            fvs[v].get_feature_vectors([{"cc_num": k} for k in keys], return_type="numpy")
        )
        for v in (1, 2)
    }
    assert expected[1].shape == expected[2].shape and not np.allclose(expected[1], expected[2])
    body = {"inputs": [{"name": "cc_num", "shape": [N], "datatype": "INT64", "data": keys}]}
    seen: list[tuple[int, int, Any]] = []  # (status, served version, proba)
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/v2/models/fraud/infer", json=body)
                data = r.json()
                proba = None
                if r.status_code == 200:
                    out = {o["name"]: o for o in data["outputs"]}["predict_proba"]
                    proba = np.asarray(out["data"]).reshape(out["shape"])
                seen.append((r.status_code, int(data.get("model_version", 0)), proba))

    with running_server(create_app(proj, poll_interval_s=0.1)) as url:
        threads = [threading.Thread(target=client, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        rolled = proj.model_registry.rollback("fraud", reason="velocity feature is broken upstream")
        assert rolled.version == 1 and rolled.feature_view_version == 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (seen and seen[-1][1] == 1):
            time.sleep(0.05)
        time.sleep(0.5)  # keep the load on after the swap
        stop.set()
        for t in threads:
            t.join()
    assert [s for s, _, _ in seen if s != 200] == []  # zero failed requests across the swap
    versions = [v for _, v, _ in seen]
    assert 2 in versions and versions[-1] == 1
    assert set(versions[-8:]) == {1}  # after the swap (plus in-flight v2 requests draining): v1 only
    for _, version, proba in seen:
        np.testing.assert_allclose(proba, expected[version], atol=1e-6)
    last = proj.model_registry.alias_history("fraud", "production")[-1]
    assert (last.from_version, last.to_version, last.reason) == (2, 1, "velocity feature is broken upstream")
