"""The model server's protocol surface beyond JSON V2 on a real uvicorn: the binary tensor
extension (driven by tritonclient.http with ``binary_data=True``), datatype enforcement as Triton
does it, the KServe V1 ``:predict`` route, and 404 for a registered version nobody loaded."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import create_app
from fti.testing.serving import running_server

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proj = fti.connect(home=tmp_path_factory.mktemp("protocols") / "home")
    X, y = make_classification(300, n_features=4, random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    model = LogisticRegression().fit(X, y)
    mr = proj.model_registry
    mr.register("clf", model, input_example=frame.head(5))  # version 1: not deployed
    mr.register("clf", model, input_example=frame.head(5))  # version 2: the deployed one
    # an FP32 model registered to accept lossless widening, and a strict FP32 one
    frame32 = frame.astype("float32")
    mr.register("wide", model, input_example=frame32.head(5), allow_widening=True)
    mr.register("strict", model, input_example=frame32.head(5))
    for name in ("clf", "wide", "strict"):
        proj.serving.deploy(name, model=name, log_requests=False)
    with running_server(create_app(proj, poll_interval_s=0.2)) as url:
        yield {"url": url, "project": proj, "model": model, "frame": frame}
    proj.close()


@pytest.fixture
def client(served: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served["url"], timeout=20) as c:
        yield c


def _inputs(rows: np.ndarray, datatype: str = "FP64") -> list[dict[str, Any]]:
    return [
        {"name": n, "shape": [len(rows)], "datatype": datatype, "data": rows[:, j].tolist()}
        for j, n in enumerate(FEATURES)
    ]


def test_tritonclient_http_binary_tensors_in_and_out(served: dict[str, Any]) -> None:
    import tritonclient.http as triton

    rows = served["frame"].to_numpy()[:6]
    client = triton.InferenceServerClient(url=served["url"].removeprefix("http://"))
    try:
        inputs = []
        for j, name in enumerate(FEATURES):
            inp = triton.InferInput(name, [6, 1], "FP64")
            inp.set_data_from_numpy(rows[:, j : j + 1].copy(), binary_data=True)
            inputs.append(inp)
        requested = [
            triton.InferRequestedOutput("predict", binary_data=True),
            triton.InferRequestedOutput("predict_proba", binary_data=False),
        ]
        result = client.infer("clf", inputs, outputs=requested, request_id="bin-1")
        response = result.get_response()
        assert response["id"] == "bin-1" and response["model_version"] == "2"
        by_name = {o["name"]: o for o in response["outputs"]}
        assert "data" not in by_name["predict"]  # it came as raw bytes after the JSON
        assert by_name["predict"]["parameters"]["binary_data_size"] == 6 * 8
        assert "data" in by_name["predict_proba"]
        np.testing.assert_array_equal(result.as_numpy("predict"), served["model"].predict(rows))
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), served["model"].predict_proba(rows), atol=1e-6
        )
        # no outputs named: tritonclient asks for every output in binary (binary_data_output)
        every = client.infer("clf", inputs)
        assert all("data" not in o for o in every.get_response()["outputs"])
        np.testing.assert_allclose(
            every.as_numpy("predict_proba"), served["model"].predict_proba(rows), atol=1e-6
        )
    finally:
        client.close()


def _binary_body(header: dict[str, Any], *blobs: bytes) -> tuple[bytes, dict[str, str]]:
    head = orjson.dumps(header)
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}


def test_bytes_and_mixed_json_inputs_in_a_binary_request(client: httpx.Client) -> None:
    rows = np.array([[0.5, -1.0, 2.0, 0.1], [1.5, 0.0, -2.0, 0.3]])
    header = {
        "inputs": [
            {"name": "f0", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
            *_inputs(rows)[1:],
        ],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    }
    body, headers = _binary_body(header, rows[:, 0].astype("<f8").tobytes())
    response = client.post("/v2/models/clf/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    size = int(response.headers["inference-header-content-length"])
    meta = orjson.loads(response.content[:size])
    [out] = meta["outputs"]
    assert out["parameters"] == {"binary_data_size": 16} and out["datatype"] == "INT64"
    json_answer = client.post("/v2/models/clf/infer", json={"inputs": _inputs(rows)}).json()
    assert np.frombuffer(response.content[size:], "<i8").tolist() == json_answer["outputs"][0]["data"]


BAD_BINARY: list[tuple[str, dict[str, Any], bytes, str | None, str]] = [
    (
        "too few bytes",
        {"name": "f0", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 8}},
        b"\0" * 8,
        None,
        "input 'f0': 8 bytes of data, but its shape needs 2 elements of 8 byte(s) = 16 bytes",
    ),
    (
        "size past the end",
        {"name": "f0", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 64}},
        b"\0" * 16,
        None,
        "goes past the end of the binary data",
    ),
    (
        "bytes left over",
        {"name": "f0", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
        b"\0" * 20,
        None,
        "4 bytes of binary data that no input's binary_data_size accounts for",
    ),
    (
        "infinite value",
        {"name": "f0", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
        struct.pack("<2d", 1.0, float("inf")),
        None,
        "input 'f0': infinite values are not allowed",
    ),
    (
        "header length beyond the body",
        {"name": "f0", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
        b"\0" * 16,
        "99999",
        "Inference-Header-Content-Length must be the byte length",
    ),
    (
        "broken BYTES element",
        {"name": "f0", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}},
        struct.pack("<I", 9) + b"ab",
        None,
        "input 'f0': a BYTES element of 9 bytes goes past the data",
    ),
    (
        "wrong datatype in binary",
        {"name": "f0", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}},
        b"\0" * 16,
        None,
        "input 'f0' has datatype INT64 but the model expects FP64",
    ),
]


@pytest.mark.parametrize(
    ("case", "first", "blob", "length", "message"), BAD_BINARY, ids=[c[0] for c in BAD_BINARY]
)
def test_malformed_binary_requests_are_400s_naming_the_problem(
    client: httpx.Client, case: str, first: dict[str, Any], blob: bytes, length: str | None, message: str
) -> None:
    rows = np.ones((first["shape"][0], 4))
    body, headers = _binary_body({"inputs": [first, *_inputs(rows)[1:]]}, blob)
    if length is not None:
        headers["Inference-Header-Content-Length"] = length
    response = client.post("/v2/models/clf/infer", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_datatypes_are_enforced_and_widened_only_where_registered(client: httpx.Client) -> None:
    rows = np.array([[1.0, 2.0, 3.0, 4.0]])
    refused = client.post("/v2/models/strict/infer", json={"inputs": _inputs(rows, "FP64")})
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("input 'f0' has datatype FP64 but the model expects FP32")
    as_int = [{**i, "data": [int(v) for v in i["data"]]} for i in _inputs(rows, "INT64")]
    assert client.post("/v2/models/clf/infer", json={"inputs": as_int}).status_code == 400
    assert client.post("/v2/models/strict/infer", json={"inputs": _inputs(rows, "FP32")}).status_code == 200
    # FP16 and INT16 convert to FP32 without loss; FP64 and INT32 do not
    wide = [{**i, "data": [int(v) for v in i["data"]]} for i in _inputs(rows, "INT16")]
    assert client.post("/v2/models/wide/infer", json={"inputs": wide}).status_code == 200
    assert client.post("/v2/models/wide/infer", json={"inputs": _inputs(rows, "FP16")}).status_code == 200
    lossy = client.post("/v2/models/wide/infer", json={"inputs": _inputs(rows, "FP64")})
    assert lossy.status_code == 400 and "does not convert without loss" in lossy.json()["error"]


def test_kserve_v1_predict(served: dict[str, Any], client: httpx.Client) -> None:
    rows = served["frame"].to_numpy()[:3]
    expected = served["model"].predict(rows).tolist()
    by_position = client.post("/v1/models/clf:predict", json={"instances": rows.tolist()})
    assert by_position.status_code == 200, by_position.text
    assert by_position.json() == {"predictions": expected}
    by_name = [dict(zip(FEATURES, r, strict=True)) for r in rows.tolist()]
    assert (
        client.post("/v1/models/clf:predict", json={"instances": by_name}).json()["predictions"] == expected
    )
    assert client.get("/v1/models/clf").json() == {"name": "clf", "ready": True}
    short = client.post("/v1/models/clf:predict", json={"instances": [[1.0, 2.0]]})
    assert (
        short.status_code == 400 and "instances[0] has 2 values; the model takes 4" in short.json()["error"]
    )
    junk = client.post("/v1/models/clf:predict", json={"instances": [["a", 1.0, 2.0, 3.0]]})
    assert junk.status_code == 400 and "input 'f0'" in junk.json()["error"]
    assert client.post("/v1/models/clf:predict", json={"rows": []}).status_code == 400
    assert client.post("/v1/models/nope:predict", json={"instances": [[1]]}).status_code == 404


def test_a_registered_version_that_is_not_loaded_is_a_404_with_the_hint(client: httpx.Client) -> None:
    body = {"inputs": _inputs(np.ones((1, 4)))}
    response = client.post("/v2/models/clf/versions/1/infer", json=body)
    assert response.status_code == 404 and "retry-after" not in response.headers
    error = response.json()["error"]
    assert "version 1 is registered but not loaded on this server (loaded: [2])" in error
    assert 'POST /v2/repository/models/clf/load {"parameters": {"version": 1}}' in error
    assert client.get("/v2/models/clf/versions/1").status_code == 404
    assert client.post("/v2/models/clf/versions/2/infer", json=body).status_code == 200


def test_with_lazy_a_registered_version_loads_on_demand(served: dict[str, Any]) -> None:
    app = create_app(served["project"], lazy=True, log_requests=False)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        response = c.post("/v2/models/clf/versions/1/infer", json={"inputs": _inputs(np.ones((1, 4)))})
        assert response.status_code == 200 and response.json()["model_version"] == "1"


def test_deployment_predict_sends_the_models_datatypes(served: dict[str, Any]) -> None:
    """Integer values for FP64 inputs: the Python client declares the signature's datatype
    rather than guessing INT64 from the values (which the server would refuse)."""
    deployment = served["project"].serving.get("clf")
    row = {"f0": 1, "f1": 0, "f2": -1, "f3": 2}
    expected = served["model"].predict(np.array([[1.0, 0.0, -1.0, 2.0]])).tolist()
    assert deployment.predict(row)["predict"] == expected
