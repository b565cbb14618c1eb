"""Triton's gRPC extensions on a real server, driven by tritonclient.grpc unmodified: streaming
inference (start_stream / async_stream_infer), model configuration, inference statistics, and
UNIMPLEMENTED with a message for shared memory, trace and log settings."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as tritonclient_grpc
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from tritonclient.utils import InferenceServerException

import fti
from fti.serving.app import create_app
from fti.testing.serving import running_server

FEATURES = ["f0", "f1", "f2", "f3"]
ADMIN = "admin-key-1"
AUTH = {"authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proj = fti.connect(home=tmp_path_factory.mktemp("triton") / "home", api_keys=ADMIN)
    X, y = make_classification(300, n_features=4, random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    model = LogisticRegression().fit(X, y)
    proj.model_registry.register("clf", model, input_example=frame.head(5))
    proj.serving.deploy("clf", model="clf", max_batch_size=16, max_batch_delay_ms=3, log_requests=False)
    app = create_app(proj, poll_interval_s=0.2, grpc_address="127.0.0.1:0")
    with running_server(app) as url:
        client = tritonclient_grpc.InferenceServerClient(url=f"127.0.0.1:{app.state.fti.grpc_port}")
        yield {"url": url, "client": client, "model": model, "X": X}
        client.close()
    proj.close()


def _inputs(rows: np.ndarray, names: list[str] = FEATURES) -> list[Any]:
    out = []
    for j, name in enumerate(names):
        tensor = tritonclient_grpc.InferInput(name, [len(rows)], "FP64")
        tensor.set_data_from_numpy(rows[:, j].copy())
        out.append(tensor)
    return out


def test_streaming_inference_answers_every_request_and_reports_errors_in_the_stream(
    served: dict[str, Any],
) -> None:
    client, X, model = served["client"], served["X"], served["model"]
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)), headers=AUTH)
    try:
        for i in range(30):
            rows = X[i * 3 : i * 3 + 3]
            client.async_stream_infer("clf", _inputs(rows), request_id=f"s-{i}")
        client.async_stream_infer("clf", _inputs(X[:2], ["f0", "f1", "f2", "nope"]), request_id="bad")
        client.async_stream_infer("clf", _inputs(X[:1]), request_id="after-the-error")
        got = [answers.get(timeout=30) for _ in range(32)]
    finally:
        client.stop_stream()
    errors = [error for _, error in got if error is not None]
    assert len(errors) == 1 and "nope" in errors[0].message()  # the bad request's own error
    by_id = {result.get_response().id: result for result, error in got if error is None}
    assert set(by_id) == {f"s-{i}" for i in range(30)} | {"after-the-error"}  # the stream went on
    for i in range(30):
        rows = X[i * 3 : i * 3 + 3]
        np.testing.assert_array_equal(by_id[f"s-{i}"].as_numpy("predict"), model.predict(rows))
    # a stream without a key is refused
    refused: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: refused.put((result, error)))
    try:
        with contextlib.suppress(InferenceServerException):  # the refusal may arrive before the request
            client.async_stream_infer("clf", _inputs(X[:1]), request_id="nokey")
        result, error = refused.get(timeout=30)
    finally:
        client.stop_stream()
    assert result is None and "UNAUTHENTICATED" in str(error.status())


def test_model_config_is_the_signature_and_batching_in_tritons_terms(served: dict[str, Any]) -> None:
    config = served["client"].get_model_config("clf", headers=AUTH, as_json=True)["config"]
    assert config["name"] == "clf" and config["backend"] == "fti" and config["max_batch_size"] == 16
    assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [
        (n, "TYPE_FP64", ["1"]) for n in FEATURES
    ]
    outputs = {o["name"]: (o["data_type"], o["dims"]) for o in config["output"]}
    assert outputs == {"predict": ("TYPE_INT64", ["1"]), "predict_proba": ("TYPE_FP64", ["2"])}
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == "3000"
    with pytest.raises(InferenceServerException, match="no_such_model") as missing:
        served["client"].get_model_config("no_such_model", headers=AUTH)
    assert "NOT_FOUND" in str(missing.value.status())


def test_statistics_count_successes_failures_rows_and_predict_calls(served: dict[str, Any]) -> None:
    client, X = served["client"], served["X"]

    def stats() -> dict[str, Any]:
        return client.get_inference_statistics("clf", headers=AUTH, as_json=True)["model_stats"][0]

    before = stats()
    assert (before["name"], before["version"]) == ("clf", "1")
    for n in (1, 4, 7):
        client.infer("clf", _inputs(X[:n]), headers=AUTH)
    with pytest.raises(InferenceServerException):
        client.infer("clf", _inputs(X[:2], ["f0", "f1", "f2", "nope"]), headers=AUTH)
    after = stats()

    def count(s: dict[str, Any], *path: str) -> int:
        for key in path:
            s = s.get(key, {})
        return int(s or 0)  # proto3 JSON leaves zeros out

    assert (
        count(after, "inference_stats", "success", "count")
        - count(before, "inference_stats", "success", "count")
        == 3
    )
    assert (
        count(after, "inference_stats", "fail", "count") - count(before, "inference_stats", "fail", "count")
        == 1
    )
    assert count(after, "inference_count") - count(before, "inference_count") == 12  # rows predicted
    calls = count(after, "execution_count") - count(before, "execution_count")
    assert 1 <= calls <= 3
    assert count(after, "inference_stats", "success", "ns") > count(
        before, "inference_stats", "success", "ns"
    )
    assert (
        count(after, "inference_stats", "queue", "count") - count(before, "inference_stats", "queue", "count")
        == 3
    )
    assert count(after, "last_inference") >= count(before, "last_inference") > 0
    everything = client.get_inference_statistics(headers=AUTH, as_json=True)["model_stats"]
    assert [s["name"] for s in everything] == ["clf"]
    with pytest.raises(InferenceServerException) as missing:
        client.get_inference_statistics("no_such_model", headers=AUTH)
    assert "NOT_FOUND" in str(missing.value.status())


def test_shared_memory_trace_and_log_rpcs_are_unimplemented_with_a_message(served: dict[str, Any]) -> None:
    client = served["client"]
    calls = [
        (client.get_system_shared_memory_status, "shared-memory tensors"),
        (lambda **kw: client.register_system_shared_memory("r", "/key", 64, **kw), "shared-memory tensors"),
        (client.get_cuda_shared_memory_status, "shared-memory tensors"),
        (lambda **kw: client.unregister_cuda_shared_memory("r", **kw), "shared-memory tensors"),
        (client.get_trace_settings, "trace settings"),
        (client.get_log_settings, "fti serve --log-level"),
    ]
    for call, message in calls:
        with pytest.raises(InferenceServerException) as refused:
            call(headers=AUTH)
        assert "UNIMPLEMENTED" in str(refused.value.status()) and message in refused.value.message()
