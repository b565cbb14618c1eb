"""The model server on a real uvicorn (loopback), driven by httpx and by tritonclient (JSON mode)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import create_app
from fti.testing.serving import running_server

FEATURES = ["f0", "f1", "f2", "f3"]


def _train(seed: int) -> tuple[LogisticRegression, pd.DataFrame]:
    X, y = make_classification(300, n_features=4, random_state=seed)
    frame = pd.DataFrame(X, columns=FEATURES)
    return LogisticRegression().fit(X, y), frame


def _body(rows: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, j].tolist()}
            for j, name in enumerate(FEATURES)
        ],
        **extra,
    }


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proj = fti.connect(home=tmp_path_factory.mktemp("serve") / "home")
    model, frame = _train(0)
    mv = proj.model_registry.register("clf", model, input_example=frame.head(5))
    proj.model_registry.set_alias("clf", mv.version, "production")
    proj.serving.deploy("clf", model="clf@production", max_batch_delay_ms=20)
    app = create_app(proj, poll_interval_s=0.2, max_body_bytes=64 * 1024)
    with running_server(app) as url:
        yield {"url": url, "project": proj, "model": model, "frame": frame, "app": app}
    proj.close()


@pytest.fixture
def client(served: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served["url"], timeout=20) as c:
        yield c


def test_health_metadata_and_inference(served: dict[str, Any], client: httpx.Client) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["extensions"] == ["model_repository"]
    meta = client.get("/v2/models/clf").json()
    assert [i["name"] for i in meta["inputs"]] == FEATURES
    assert {o["name"] for o in meta["outputs"]} == {"predict", "predict_proba"}
    assert client.get("/v2/models/clf/versions/1").json()["versions"] == ["1"]
    assert client.get("/v2/models/clf/ready").json()["ready"] is True

    rows = served["frame"].to_numpy()[:7]
    response = client.post("/v2/models/clf/infer", json=_body(rows, id="req-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["model_name"], body["model_version"]) == ("req-1", "clf", "1")
    outputs = {o["name"]: o for o in body["outputs"]}
    expected = served["model"].predict(rows)
    assert outputs["predict"]["data"] == expected.tolist()
    assert outputs["predict"]["shape"] == [7]
    proba = np.array(outputs["predict_proba"]["data"]).reshape(outputs["predict_proba"]["shape"])
    np.testing.assert_allclose(proba, served["model"].predict_proba(rows), atol=1e-5)

    only = client.post("/v2/models/clf/versions/1/infer", json=_body(rows[:1], outputs=[{"name": "predict"}]))
    assert [o["name"] for o in only.json()["outputs"]] == ["predict"]
    nested = _body(rows[:2])
    for inp in nested["inputs"]:
        inp["shape"] = [2, 1]
        inp["data"] = [[v] for v in inp["data"]]
    assert (
        client.post("/v2/models/clf/infer", json=nested).json()["outputs"][0]["data"] == expected[:2].tolist()
    )


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("malformed json", "clf", b'{"inputs": [', 400, "not valid JSON"),
    ("missing inputs", "clf", {"id": "x"}, 400, "has no 'inputs'"),
    (
        "unknown input",
        "clf",
        {"inputs": [{"name": "zz", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
        400,
        "unknown input(s) ['zz']",
    ),
    (
        "missing input",
        "clf",
        {"inputs": [{"name": "f0", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
        400,
        "missing input(s) ['f1', 'f2', 'f3']",
    ),
    (
        "shape mismatch",
        "clf",
        {"inputs": [{"name": "f0", "shape": [3], "datatype": "FP64", "data": [1.0]}]},
        400,
        "input 'f0': shape [3] needs 3 values but data has 1",
    ),
    (
        "wrong datatype",
        "clf",
        {
            "inputs": [
                {
                    "name": n,
                    "shape": [1],
                    "datatype": "BYTES" if n == "f2" else "FP64",
                    "data": ["a" if n == "f2" else 1.0],
                }
                for n in FEATURES
            ]
        },
        400,
        "input 'f2' has datatype BYTES but the model expects FP64",
    ),
    (
        "junk in a float input",
        "clf",
        {"inputs": [{"name": "f0", "shape": [1], "datatype": "FP64", "data": [{"a": 1}]}]},
        400,
        "input 'f0': datatype FP64 needs numbers",
    ),
    (
        "nan where forbidden",
        "clf",
        b'{"inputs": ['
        + b",".join(
            b'{"name": "%s", "shape": [1], "datatype": "FP64", "data": [%s]}'
            % (n.encode(), b"NaN" if n == "f1" else b"1.0")
            for n in FEATURES
        )
        + b"]}",
        400,
        "input 'f1' contains null/NaN values",
    ),
    (
        "unknown output",
        "clf",
        _body(np.ones((1, 4)), outputs=[{"name": "logits"}]),
        400,
        "unknown output(s) ['logits']",
    ),
    ("oversized body", "clf", b'{"inputs": [' + b" " * (70 * 1024) + b"]}", 413, "exceeds the limit"),
    ("unknown model", "nope", _body(np.ones((1, 4))), 404, "unknown model 'nope'"),
    ("unknown version", "clf/versions/7", _body(np.ones((1, 4))), 404, "has no version 7"),
    ("bad version", "clf/versions/x1", _body(np.ones((1, 4))), 404, "has no version 'x1'"),
]


@pytest.mark.parametrize(
    ("case", "model", "body", "status", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_requests_get_a_4xx_naming_the_problem_and_the_server_keeps_serving(
    served: dict[str, Any], client: httpx.Client, case: str, model: str, body: Any, status: int, message: str
) -> None:
    if isinstance(body, bytes):
        response = client.post(
            f"/v2/models/{model}/infer", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = client.post(f"/v2/models/{model}/infer", json=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert message in response.json()["error"]
    ok = client.post("/v2/models/clf/infer", json=_body(served["frame"].to_numpy()[:1]))
    assert ok.status_code == 200


def test_unknown_routes_and_methods_are_json_errors(client: httpx.Client) -> None:
    response = client.get("/v2/nothing/here")
    assert response.status_code == 404
    assert "no route" in response.json()["error"]
    assert client.get("/v2/models/clf/infer").status_code == 405


def test_tritonclient_drives_the_server_in_json_mode(served: dict[str, Any]) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    triton_client = triton.InferenceServerClient(url=served["url"].removeprefix("http://"))
    try:
        assert triton_client.is_server_live()
        assert triton_client.is_server_ready()
        assert triton_client.is_model_ready("clf")
        assert triton_client.get_server_metadata()["name"] == "fti"
        meta = triton_client.get_model_metadata("clf")
        assert [i["name"] for i in meta["inputs"]] == FEATURES
        index = triton_client.get_model_repository_index()
        assert {"name": "clf", "version": "1", "state": "READY", "reason": ""} in index

        rows = served["frame"].to_numpy()[:5]
        inputs = []
        for j, name in enumerate(FEATURES):
            inp = triton.InferInput(name, [5], "FP64")
            inp.set_data_from_numpy(rows[:, j].copy(), binary_data=False)
            inputs.append(inp)
        outputs = [triton.InferRequestedOutput("predict", binary_data=False)]
        result = triton_client.infer("clf", inputs, outputs=outputs, request_id="t-1")
        assert result.get_response()["id"] == "t-1"
        expected = served["model"].predict(rows)
        assert result.as_numpy("predict").tolist() == expected.tolist()

        triton_client.unload_model("clf")
        assert not triton_client.is_model_ready("clf")
        time.sleep(0.5)  # several polls later it is still unloaded (the poller does not reload it)
        assert not triton_client.is_model_ready("clf")
        with pytest.raises(InferenceServerException, match="is not loaded"):
            triton_client.infer("clf", inputs, outputs=outputs)
        with httpx.Client(base_url=served["url"]) as c:
            refused = c.post("/v2/models/clf/infer", json=_body(rows))
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert "load it with POST /v2/repository/models/clf/load" in refused.json()["error"]
        triton_client.load_model("clf")
        assert triton_client.is_model_ready("clf")
        assert (
            triton_client.infer("clf", inputs, outputs=outputs).as_numpy("predict").tolist()
            == expected.tolist()
        )
        with pytest.raises(InferenceServerException, match="unknown model 'ghost'"):
            triton_client.load_model("ghost")
    finally:
        triton_client.close()


def test_concurrent_requests_are_batched_in_order_and_metered(
    served: dict[str, Any], client: httpx.Client
) -> None:
    frame = served["frame"].to_numpy()
    before = _metric(client.get("/metrics").text, "fti_batch_requests_count", model="clf")

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served["url"], timeout=20) as ac:
            return await asyncio.gather(
                *(
                    ac.post("/v2/models/clf/infer", json=_body(frame[i : i + 1], id=f"b{i}"))
                    for i in range(48)
                )
            )

    responses = asyncio.run(run())
    expected = served["model"].predict(frame[:48])
    for i, response in enumerate(responses):
        assert response.status_code == 200
        assert response.json()["id"] == f"b{i}"
        assert response.json()["outputs"][0]["data"] == [expected[i]]
    text = client.get("/metrics").text
    calls = _metric(text, "fti_batch_requests_count", model="clf") - before
    assert 0 < calls < 48  # some requests were merged into one predict call
    size_sum = _metric(text, "fti_batch_size_sum", model="clf")
    size_count = _metric(text, "fti_batch_size_count", model="clf")
    assert size_sum / size_count > 1
    assert _metric(text, "fti_inference_requests_total", model="clf", version="1") >= 48
    assert _metric(text, "fti_model_loaded", model="clf", version="1") == 1
    assert _metric(text, "fti_inference_latency_seconds_count", model="clf") >= 48
    assert _metric(text, "fti_inference_queue_seconds_count", model="clf") >= 48


def _logged(project: fti.Project, request_id: str, rows: int) -> pd.DataFrame:
    deadline = time.monotonic() + 15
    logged = pd.DataFrame()
    while time.monotonic() < deadline:
        try:
            logged = project.feature_store.get_feature_group("clf_inference_log").read()
            if "request_id" in logged and (logged["request_id"] == request_id).sum() == rows:
                break
        except fti.NotFoundError:
            pass
        time.sleep(0.2)
    return logged[logged["request_id"] == request_id].sort_values("row") if "request_id" in logged else logged


def test_inferences_are_logged_to_the_inference_log_feature_group(
    served: dict[str, Any], client: httpx.Client
) -> None:
    rows = served["frame"].to_numpy()[10:13]
    assert client.post("/v2/models/clf/infer", json=_body(rows, id="logged-1")).status_code == 200
    mine = _logged(served["project"], "logged-1", 3)
    assert mine["row"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(mine[FEATURES].to_numpy(), rows)
    assert set(mine["model_version"]) == {1}
    expected = served["model"].predict(rows)
    assert mine["predict"].tolist() == expected.tolist()
    assert {"timestamp", "model_name", "predict_proba_0", "predict_proba_1"} <= set(mine.columns)
    # later flushes are plain appends, recorded as commits of the group
    group = served["project"].feature_store.get_feature_group("clf_inference_log")
    commits = len(group.commits())
    assert client.post("/v2/models/clf/infer", json=_body(rows[:1], id="logged-2")).status_code == 200
    second = _logged(served["project"], "logged-2", 1)
    assert second["predict"].tolist() == expected[:1].tolist()
    assert len(group.commits()) > commits
    assert (group.read()["request_id"] == "logged-1").sum() == 3  # nothing rewritten


def test_openapi_document_describes_the_routes(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/v2/models/{model}/infer" in doc["paths"]
    assert "/v1/models/{model}:predict" in doc["paths"]
    assert "InferenceRequestModel" in doc["components"]["schemas"]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[fti.Project]:
    proj = fti.connect(home=tmp_path / "home", api_keys="static-key-1")
    model, frame = _train(0)
    proj.model_registry.register("clf", model, input_example=frame.head(5))
    yield proj
    proj.close()


def test_api_keys_guard_every_route_but_health(fresh: fti.Project) -> None:
    from fti.serving.auth import create_key, revoke_key

    fresh.serving.deploy("clf", model="clf", log_requests=False)
    stored = create_key(fresh, "ci")
    body = _body(np.ones((1, 4)))
    with running_server(create_app(fresh, poll_interval_s=0.1)) as url, httpx.Client(base_url=url) as c:
        assert c.get("/v2/health/live").status_code == 200
        assert c.get("/v2/health/ready").status_code == 200
        for path in ("/v2", "/v2/models/clf", "/metrics", "/openapi.json"):
            response = c.get(path)
            assert response.status_code == 401, path
            assert "missing API key" in response.json()["error"]
        assert c.post("/v2/models/clf/infer", json=body).status_code == 401
        wrong = c.post("/v2/models/clf/infer", json=body, headers={"Authorization": "Bearer nope"})
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid or revoked API key")
        basic = c.get("/v2", headers={"Authorization": "Basic abc"})
        assert "malformed Authorization header" in basic.json()["error"]
        for key in ("static-key-1", stored):
            assert (
                c.post(
                    "/v2/models/clf/infer", json=body, headers={"Authorization": f"Bearer {key}"}
                ).status_code
                == 200
            )
        new_key = create_key(fresh, "late")  # works at once (a miss refreshes the key cache)
        time.sleep(1.1)
        assert c.get("/v2", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
        revoke_key(fresh, "ci")
        time.sleep(0.5)
        assert c.get("/v2", headers={"Authorization": f"Bearer {stored}"}).status_code == 401


def test_hot_swap_under_load_fails_no_request(fresh: fti.Project) -> None:
    mr = fresh.model_registry
    model_b, frame = _train(1)
    mr.set_alias("clf", 1, "production")
    mr.register("clf", model_b, input_example=frame.head(5))
    fresh.serving.deploy("clf", model="clf@production", log_requests=False)
    body = _body(frame.to_numpy()[:2])
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    with running_server(create_app(fresh, poll_interval_s=0.05)) as url:
        headers = {"Authorization": "Bearer static-key-1"}

        async def load() -> None:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as ac:

                async def worker() -> None:
                    while not stop.is_set():
                        r = await ac.post("/v2/models/clf/infer", json=body)
                        seen.append((r.status_code, r.json().get("model_version", r.text)))

                await asyncio.gather(*(worker() for _ in range(8)))

        thread = threading.Thread(target=asyncio.run, args=(load(),))
        thread.start()
        time.sleep(0.5)
        mr.set_alias("clf", 2, "production")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(v == "2" for _, v in seen[-5:]):
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        thread.join(timeout=20)
        with httpx.Client(base_url=url, headers=headers) as c:
            index = c.post("/v2/repository/index", json={}).json()
            metrics = c.get("/metrics").text
    statuses = {s for s, _ in seen}
    assert statuses == {200}, [x for x in seen if x[0] != 200][:3]
    versions = [v for _, v in seen]
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions.index("2") > 0 and "1" not in versions[versions.index("2") + 50 :]
    assert index == [{"name": "clf", "version": "2", "state": "READY", "reason": ""}]
    assert _metric(metrics, "fti_model_loaded", model="clf", version="1") == 0


def test_lazy_loading_loads_on_first_request_and_unloads_when_idle(fresh: fti.Project) -> None:
    fresh.serving.deploy("clf", model="clf", log_requests=False)
    headers = {"Authorization": "Bearer static-key-1"}
    app = create_app(fresh, lazy=True, idle_unload_s=0.3, poll_interval_s=0.1)
    with running_server(app) as url, httpx.Client(base_url=url, headers=headers) as c:
        assert c.post("/v2/repository/index").json()[0]["state"] == "UNLOADED"
        assert c.get("/v2/health/ready").status_code == 200
        started = time.perf_counter()
        assert c.post("/v2/models/clf/infer", json=_body(np.ones((1, 4)))).status_code == 200
        assert time.perf_counter() - started < 5
        assert c.post("/v2/repository/index").json()[0]["state"] == "READY"
        deadline = time.monotonic() + 5
        while c.post("/v2/repository/index").json()[0]["state"] != "UNLOADED" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.post("/v2/repository/index").json()[0]["state"] == "UNLOADED"
        assert c.post("/v2/models/clf/infer", json=_body(np.ones((1, 4)))).status_code == 200


def test_queue_full_answers_503_with_retry_after(fresh: fti.Project) -> None:
    fresh.serving.deploy("clf", model="clf", log_requests=False, max_queue_size=1, max_batch_size=1)
    headers = {"Authorization": "Bearer static-key-1"}
    body = _body(np.ones((200, 4)))

    with running_server(create_app(fresh)) as url:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as ac:
                return await asyncio.gather(*(ac.post("/v2/models/clf/infer", json=body) for _ in range(40)))

        responses = asyncio.run(burst())
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503} and 200 in codes and 503 in codes
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert re.search(r"queue is full \(1 requests waiting\)", refused.json()["error"])


def test_redeploying_with_a_new_config_under_load_fails_no_request(fresh: fti.Project) -> None:
    model_b, frame = _train(1)
    fresh.model_registry.register("clf", model_b, input_example=frame.head(5))
    fresh.serving.deploy("clf", model="clf", version=1, log_requests=False)
    body = _body(frame.to_numpy()[:2])
    seen: list[tuple[int, str]] = []
    stop = threading.Event()
    headers = {"Authorization": "Bearer static-key-1"}
    with running_server(create_app(fresh, poll_interval_s=0.05)) as url:

        async def load() -> None:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as ac:

                async def worker() -> None:
                    while not stop.is_set():
                        r = await ac.post("/v2/models/clf/infer", json=body)
                        seen.append((r.status_code, r.json().get("model_version", r.text)))

                await asyncio.gather(*(worker() for _ in range(4)))

        thread = threading.Thread(target=asyncio.run, args=(load(),))
        thread.start()
        time.sleep(0.4)
        fresh.serving.deploy("clf", model="clf", version=2, log_requests=False, max_batch_size=4)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(v == "2" for _, v in seen[-3:]):
            time.sleep(0.05)
        stop.set()
        thread.join(timeout=20)
    assert {s for s, _ in seen} == {200}, [x for x in seen if x[0] != 200][:3]
    assert seen[0][1] == "1" and seen[-1][1] == "2"


def test_a_model_that_fails_to_load_is_reported_and_a_fixed_version_is_picked_up(fresh: fti.Project) -> None:
    mr = fresh.model_registry
    model_b, frame = _train(1)
    mr.set_alias("clf", 1, "production")
    mr.register("clf", model_b, input_example=frame.head(5))
    fresh.serving.deploy("clf", model="clf@production", log_requests=False)
    stored = Path(fresh.settings.resolved_artifacts_url) / mr.get_model("clf", version=1).artifact_prefix
    tampered = [p for p in stored.rglob("*") if p.is_file()]
    assert tampered
    for path in tampered:  # version 1 no longer matches its recorded digests
        path.write_bytes(path.read_bytes() + b"tampered")
    headers = {"Authorization": "Bearer static-key-1"}
    with (
        running_server(create_app(fresh, poll_interval_s=0.05)) as url,
        httpx.Client(base_url=url, headers=headers) as c,
    ):
        assert c.get("/v2/health/ready").status_code == 503
        [entry] = c.post("/v2/repository/index").json()
        assert entry["state"] == "UNAVAILABLE" and entry["reason"]
        refused = c.post("/v2/models/clf/infer", json=_body(np.ones((1, 4))))
        assert refused.status_code == 503 and "is not loaded" in refused.json()["error"]
        mr.set_alias("clf", 2, "production")
        deadline = time.monotonic() + 10
        while c.get("/v2/health/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        response = c.post("/v2/models/clf/infer", json=_body(np.ones((1, 4))))
        assert response.status_code == 200 and response.json()["model_version"] == "2"


def test_several_versions_at_once_addressed_explicitly(fresh: fti.Project) -> None:
    model_b, frame = _train(1)
    fresh.model_registry.register("clf", model_b, input_example=frame.head(5))
    fresh.serving.deploy("clf", model="clf", log_requests=False)  # follows the latest: version 2
    headers = {"Authorization": "Bearer static-key-1"}
    body = _body(frame.to_numpy()[:3])
    with running_server(create_app(fresh)) as url, httpx.Client(base_url=url, headers=headers) as c:
        assert c.post("/v2/models/clf/infer", json=body).json()["model_version"] == "2"
        not_loaded = c.post("/v2/models/clf/versions/1/infer", json=body)
        assert not_loaded.status_code == 404 and "version 1 is registered but not loaded" in not_loaded.text
        bad = c.post("/v2/repository/models/clf/load", json={"parameters": {"version": 9}})
        assert bad.status_code == 404 and "no version 9" in bad.json()["error"]
        assert (
            c.post("/v2/repository/models/clf/load", json={"parameters": {"version": 1}}).status_code == 200
        )
        v1 = c.post("/v2/models/clf/versions/1/infer", json=body).json()
        v2 = c.post("/v2/models/clf/versions/2/infer", json=body).json()
        assert (v1["model_version"], v2["model_version"]) == ("1", "2")
        assert v1["outputs"][1]["data"] != v2["outputs"][1]["data"]  # two different models answer
        assert [e["version"] for e in c.post("/v2/repository/index").json()] == ["1", "2"]
        assert c.get("/v2/models/clf/versions/1/ready").json()["ready"] is True
        assert (
            c.post("/v2/repository/models/clf/unload", json={"parameters": {"version": 1}}).status_code == 200
        )
        assert c.post("/v2/models/clf/versions/1/infer", json=body).status_code == 404
        assert c.post("/v2/models/clf/infer", json=body).json()["model_version"] == "2"
