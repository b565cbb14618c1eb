"""A deployment that splits its traffic routes gRPC (tritonclient.grpc unmodified) and KServe V1
requests like the V2 REST route: the same variant for the same route key (metadata
``x-fti-route-key`` / header ``X-Fti-Route-Key``, or the sticky input's value) on every
protocol, the variant's own model answering and named in the response, and the shadow fed alike."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as tritonclient_grpc
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import create_app
from fti.testing.serving import running_server

FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    X, y = make_classification(300, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    example = pd.DataFrame(X[:5], columns=FEATURES)
    proj = fti.connect(home=tmp_path_factory.mktemp("split") / "home")
    mr = proj.model_registry
    champion = LogisticRegression().fit(X, y)
    challenger = LogisticRegression().fit(X, 1 - y)  # answers the opposite class: tells them apart
    mr.register("clf", champion, input_example=example)
    mr.register("clf", challenger, input_example=example)
    mr.register("clf", champion, input_example=example)
    proj.serving.deploy(
        "clf",
        model="clf:1",
        variants={"challenger": ("clf:2", 50)},
        sticky="a",
        shadow="clf:3",
        max_batch_delay_ms=0,
    )
    app = create_app(proj, poll_interval_s=0.2, grpc_address="127.0.0.1:0")
    with running_server(app) as url:
        yield {
            "url": url,
            "grpc": f"127.0.0.1:{app.state.fti.grpc_port}",
            "project": proj,
            "models": {"champion": champion, "challenger": challenger},
        }
    proj.close()


def _grpc(client: Any, row: list[float], headers: dict[str, str] | None = None) -> tuple[str, int, int]:
    inputs = []
    for name, value in zip(FEATURES, row, strict=True):
        tensor = tritonclient_grpc.InferInput(name, [1], "FP64")
        tensor.set_data_from_numpy(np.array([value]))
        inputs.append(tensor)
    result = client.infer("clf", inputs, headers=headers)
    response = result.get_response()
    return (
        response.parameters["variant"].string_param,
        int(response.model_version),
        int(result.as_numpy("predict")[0]),
    )


def _v2(http: httpx.Client, row: list[float], headers: dict[str, str] | None = None) -> tuple[str, int, int]:
    body = {
        "inputs": [
            {"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
            for n, v in zip(FEATURES, row, strict=True)
        ]
    }
    r = http.post("/v2/models/clf/infer", json=body, headers=headers)
    assert r.status_code == 200, r.text
    data = r.json()
    predict = next(o for o in data["outputs"] if o["name"] == "predict")
    return data["parameters"]["variant"], int(data["model_version"]), int(predict["data"][0])


def _v1(http: httpx.Client, instance: Any, headers: dict[str, str] | None = None) -> tuple[str, int]:
    r = http.post("/v1/models/clf:predict", json={"instances": [instance]}, headers=headers)
    assert r.status_code == 200, r.text
    data = r.json()
    return data["parameters"]["variant"], int(data["predictions"][0])


def test_grpc_and_v1_route_like_the_rest_route(served: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    rows = [[round(float(v), 3) for v in rng.uniform(-2, 2, 3)] for _ in range(40)]
    models = served["models"]
    client = tritonclient_grpc.InferenceServerClient(url=served["grpc"])
    try:
        with httpx.Client(base_url=served["url"], timeout=30) as http:
            variants = set()
            for row in rows:  # routed by the sticky input "a": the same variant on every protocol
                variant, version, predicted = _grpc(client, row)
                assert _v2(http, row) == (variant, version, predicted)
                assert _v1(http, dict(zip(FEATURES, row, strict=True))) == (variant, predicted)
                assert _v1(http, row) == (variant, predicted)  # a list row: "a" by input order
                assert version == {"champion": 1, "challenger": 2}[variant]
                assert (
                    predicted == models[variant].predict(np.array([row]))[0]
                )  # the variant's model answered
                variants.add(variant)
                # the same entity again (other features): the same variant
                assert _grpc(client, [row[0], 0.0, 0.0])[0] == variant
            assert variants == {"champion", "challenger"}
            # the route key metadata/header wins over the sticky input, alike on every protocol
            keyed = set()
            for i in range(30):
                key = f"user-{i}"
                variant = _grpc(client, rows[0], {"x-fti-route-key": key})[0]
                assert _v2(http, rows[0], {"X-Fti-Route-Key": key})[0] == variant
                assert _v1(http, rows[0], {"X-Fti-Route-Key": key})[0] == variant
                keyed.add(variant)
            assert keyed == {"champion", "challenger"}
    finally:
        client.close()


def test_grpc_and_v1_requests_reach_the_shadow(
    served: dict[str, Any],
) -> None:
    proj = served["project"]
    client = tritonclient_grpc.InferenceServerClient(url=served["grpc"])
    try:
        variant = _grpc(client, [0.123, 1.0, 2.0])[0]
    finally:
        client.close()
    with httpx.Client(base_url=served["url"], timeout=30) as http:
        v1_variant = _v1(http, {"a": 0.456, "b": 1.0, "c": 2.0})[0]
    wanted = {(0.123, "shadow"), (0.456, "shadow")}
    deadline = time.monotonic() + 20
    seen: set[tuple[float, str]] = set()
    while time.monotonic() < deadline and not wanted <= seen:
        time.sleep(0.2)
        try:  # the writer process may not have committed the first rows yet
            log = proj.feature_store.get_feature_group("clf_inference_log").read()
        except fti.NotFoundError:
            continue
        if "a" not in log:
            continue
        mine = log[log["a"].isin([0.123, 0.456])]
        seen = set(zip(mine["a"], mine["variant"], strict=True))
    # the shadow answered the copies of both requests, logged under their request ids
    assert wanted <= seen
    assert variant in ("champion", "challenger") and v1_variant in ("champion", "challenger")
