"""The gRPC Open Inference Protocol endpoint on a real server (loopback), driven by
tritonclient.grpc unmodified: health, metadata, readiness, repository, inference; the same
validation, errors, keys and limits as the REST protocol."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as tritonclient_grpc
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import create_app
from fti.serving.auth import create_key
from fti.serving.limits import ServerLimits
from fti.serving.proto import inference_pb2 as pb
from fti.testing.serving import running_server

FEATURES = ["f0", "f1", "f2", "f3"]
ADMIN = "admin-key-1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proj = fti.connect(home=tmp_path_factory.mktemp("grpc") / "home", api_keys=ADMIN)
    X, y = make_classification(300, n_features=4, random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    model = LogisticRegression().fit(X, y)
    proj.model_registry.register("clf", model, input_example=frame.head(5))
    proj.model_registry.register("clf", model, input_example=frame.head(5))
    proj.serving.deploy("clf", model="clf", max_batch_delay_ms=5)
    reader = create_key(proj, "reader", role="reader")
    app = create_app(
        proj, poll_interval_s=0.2, grpc_address="127.0.0.1:0", limits=ServerLimits(max_body_bytes=64 * 1024)
    )
    with running_server(app) as url:
        yield {
            "url": url,
            "grpc": f"127.0.0.1:{app.state.fti.grpc_port}",
            "project": proj,
            "model": model,
            "frame": frame,
            "reader": reader,
        }
    proj.close()


@pytest.fixture
def client(served: dict[str, Any]) -> Iterator[Any]:
    c = tritonclient_grpc.InferenceServerClient(url=served["grpc"])
    yield c
    c.close()


AUTH = {"authorization": f"Bearer {ADMIN}"}


def _inputs(rows: np.ndarray, datatype: str = "FP64") -> list[Any]:
    out = []
    for j, name in enumerate(FEATURES):
        inp = tritonclient_grpc.InferInput(name, [len(rows)], datatype)
        inp.set_data_from_numpy(rows[:, j].astype(np.float64 if datatype == "FP64" else np.float32))
        out.append(inp)
    return out


def _status(exc: pytest.ExceptionInfo[Any]) -> str:
    return str(exc.value.status())


def test_tritonclient_grpc_health_metadata_repository_and_inference(
    served: dict[str, Any], client: Any
) -> None:
    assert client.is_server_live() and client.is_server_ready()  # health needs no key
    assert client.is_model_ready("clf", headers=AUTH)
    assert client.get_server_metadata(headers=AUTH).name == "fti"
    meta = client.get_model_metadata("clf", headers=AUTH, as_json=True)
    assert [i["name"] for i in meta["inputs"]] == FEATURES and meta["versions"] == ["2"]
    assert {o["name"] for o in meta["outputs"]} == {"predict", "predict_proba"}
    index = client.get_model_repository_index(headers=AUTH, as_json=True)["models"]
    assert {"name": "clf", "version": "2", "state": "READY"} in index

    rows = served["frame"].to_numpy()[:5]
    result = client.infer("clf", _inputs(rows), request_id="g-1", headers=AUTH)
    response = result.get_response()
    assert (response.id, response.model_name, response.model_version) == ("g-1", "clf", "2")
    np.testing.assert_array_equal(result.as_numpy("predict"), served["model"].predict(rows))
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), served["model"].predict_proba(rows), atol=1e-6
    )
    only = client.infer(
        "clf", _inputs(rows), outputs=[tritonclient_grpc.InferRequestedOutput("predict")], headers=AUTH
    )
    assert [o.name for o in only.get_response().outputs] == ["predict"]
    # the same dataplane: the REST server's metrics count the gRPC requests
    metrics = httpx.get(f"{served['url']}/metrics", headers=AUTH).text
    assert 'fti_inference_requests_total{model="clf",variant="champion",version="2"} 2.0' in metrics


def test_load_unload_and_versions_over_grpc(served: dict[str, Any], client: Any) -> None:
    from tritonclient.utils import InferenceServerException

    rows = served["frame"].to_numpy()[:2]
    with pytest.raises(InferenceServerException) as not_loaded:
        client.infer("clf", _inputs(rows), model_version="1", headers=AUTH)
    assert _status(not_loaded) == "StatusCode.NOT_FOUND"
    assert "version 1 is registered but not loaded" in not_loaded.value.message()
    client.load_model("clf", headers=AUTH)  # no version: the deployment's own, already loaded
    load = pb.RepositoryModelLoadRequest(model_name="clf")
    load.parameters["version"].int64_param = 1
    with grpc.insecure_channel(served["grpc"]) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/RepositoryModelLoad",
            request_serializer=pb.RepositoryModelLoadRequest.SerializeToString,
            response_deserializer=pb.RepositoryModelLoadResponse.FromString,
        )
        call(load, metadata=tuple(AUTH.items()))
    assert client.is_model_ready("clf", "1", headers=AUTH)
    v1 = client.infer("clf", _inputs(rows), model_version="1", headers=AUTH)
    assert v1.get_response().model_version == "1"
    client.unload_model("clf", headers=AUTH)  # every version; the deployment stays unloaded
    assert not client.is_model_ready("clf", headers=AUTH)
    with pytest.raises(InferenceServerException) as unavailable:
        client.infer("clf", _inputs(rows), headers=AUTH)
    assert _status(unavailable) == "StatusCode.UNAVAILABLE" and "is not loaded" in unavailable.value.message()
    client.load_model("clf", headers=AUTH)
    assert client.is_model_ready("clf", headers=AUTH)
    with pytest.raises(InferenceServerException) as ghost:
        client.load_model("ghost", headers=AUTH)
    assert _status(ghost) == "StatusCode.NOT_FOUND" and "unknown model 'ghost'" in ghost.value.message()
    with pytest.raises(InferenceServerException) as config:
        client.load_model("clf", config='{"backend": "python"}', headers=AUTH)
    assert _status(config) == "StatusCode.INVALID_ARGUMENT" and "['config']" in config.value.message()


def test_grpc_errors_name_the_problem(served: dict[str, Any], client: Any) -> None:
    from tritonclient.utils import InferenceServerException

    rows = served["frame"].to_numpy()[:2]
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"model_name": "clf", "inputs": _inputs(rows, "FP32")},
            "INVALID_ARGUMENT",
            "input 'f0' has datatype FP32",
        ),
        ({"model_name": "nope", "inputs": _inputs(rows)}, "NOT_FOUND", "unknown model 'nope'"),
        (
            {"model_name": "clf", "inputs": _inputs(rows), "model_version": "9"},
            "NOT_FOUND",
            "has no version 9",
        ),
        ({"model_name": "clf", "inputs": _inputs(rows)[:3]}, "INVALID_ARGUMENT", "missing input(s) ['f3']"),
        ({"model_name": "clf", "inputs": _inputs(rows), "headers": {}}, "UNAUTHENTICATED", "API key"),
    ]
    for kwargs, status, message in cases:
        headers = kwargs.pop("headers", AUTH)
        with pytest.raises(InferenceServerException) as exc:
            client.infer(**kwargs, headers=headers)
        assert _status(exc) == f"StatusCode.{status}", exc.value.message()
        assert message in exc.value.message()
    reader = {"authorization": f"Bearer {served['reader']}"}
    assert client.infer("clf", _inputs(rows), headers=reader).as_numpy("predict").shape == (2,)
    with pytest.raises(InferenceServerException) as denied:
        client.unload_model("clf", headers=reader)
    assert _status(denied) == "StatusCode.PERMISSION_DENIED"
    big = tritonclient_grpc.InferInput("f0", [20_000], "FP64")
    big.set_data_from_numpy(np.zeros(20_000))
    with pytest.raises(InferenceServerException) as too_large:
        client.infer("clf", [big, *_inputs(np.zeros((20_000, 4)))[1:]], headers=AUTH)
    assert _status(too_large) == "StatusCode.RESOURCE_EXHAUSTED"
    assert client.is_server_ready()


def _raw_infer(served: dict[str, Any], request: Any) -> Any:
    with grpc.insecure_channel(served["grpc"]) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        return call(request, metadata=tuple(AUTH.items()))


def test_typed_contents_are_validated_like_json(served: dict[str, Any]) -> None:
    rows = served["frame"].to_numpy()[:3]
    request = pb.ModelInferRequest(model_name="clf", id="typed")
    for j, name in enumerate(FEATURES):
        tensor = request.inputs.add(name=name, datatype="FP64", shape=[3])
        tensor.contents.fp64_contents.extend(rows[:, j].tolist())
    response = _raw_infer(served, request)
    by_name = {o.name: i for i, o in enumerate(response.outputs)}
    predict = np.frombuffer(response.raw_output_contents[by_name["predict"]], "<i8")
    assert response.id == "typed" and predict.tolist() == served["model"].predict(rows).tolist()

    request.inputs[1].contents.Clear()
    request.inputs[1].contents.fp32_contents.extend([1.0, 2.0, 3.0])  # the field of another datatype
    with pytest.raises(grpc.RpcError) as wrong_field:
        _raw_infer(served, request)
    assert wrong_field.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'f1': datatype 'FP64' data goes in fp64_contents" in wrong_field.value.details()
    request.inputs[1].contents.Clear()
    request.inputs[1].contents.fp64_contents.extend([1.0, float("inf"), 3.0])
    with pytest.raises(grpc.RpcError) as infinite:
        _raw_infer(served, request)
    assert "input 'f1': infinite values are not allowed" in infinite.value.details()
    request.raw_input_contents.append(b"\0" * 24)  # raw and typed at once, and too few raw entries
    with pytest.raises(grpc.RpcError) as mixed:
        _raw_infer(served, request)
    assert "raw_input_contents has 1 entries for 4 inputs" in mixed.value.details()


def test_grpc_inference_is_shed_beyond_the_in_flight_cap_and_times_out(tmp_path: Path) -> None:
    """The REST limits hold for gRPC: beyond ``max_inflight`` a request is refused at once with
    UNAVAILABLE; a predict call past ``timeout_ms`` is DEADLINE_EXCEEDED."""
    from tritonclient.utils import InferenceServerException

    from fti.registry.flavors.pyfunc import PythonModel
    from tests.integration import _gates

    proj = fti.connect(home=tmp_path / "home")
    proj.model_registry.register(
        "gated",
        PythonModel("tests.integration._gated_model:predict"),
        input_example=pd.DataFrame({"x": [1.0]}),
    )
    proj.serving.deploy("gated", model="gated", scorer="native", timeout_ms=1500, log_requests=False)
    app = create_app(proj, grpc_address="127.0.0.1:0", limits=ServerLimits(max_inflight=1))
    inp = tritonclient_grpc.InferInput("x", [1], "FP64")
    inp.set_data_from_numpy(np.array([1.5]))
    try:
        with running_server(app):
            client = tritonclient_grpc.InferenceServerClient(url=f"127.0.0.1:{app.state.fti.grpc_port}")
            assert client.infer("gated", [inp]).as_numpy("predict").tolist() == [3.0]
            _gates.PREDICT.clear()
            with ThreadPoolExecutor(1) as pool:
                held = pool.submit(client.infer, "gated", [inp])
                time.sleep(0.3)  # in flight, its predict waiting at the gate
                with pytest.raises(InferenceServerException) as shed:
                    client.infer("gated", [inp])
                assert _status(shed) == "StatusCode.UNAVAILABLE" and "overloaded" in shed.value.message()
                with pytest.raises(InferenceServerException) as timed_out:
                    held.result(timeout=30)
                assert _status(timed_out) == "StatusCode.DEADLINE_EXCEEDED"
            _gates.PREDICT.set()
            deadline = time.monotonic() + 10
            while not client.is_server_ready():  # the stuck call returns, the model is ready again
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert client.infer("gated", [inp]).as_numpy("predict").tolist() == [3.0]
            client.close()
    finally:
        _gates.PREDICT.set()
        proj.close()
