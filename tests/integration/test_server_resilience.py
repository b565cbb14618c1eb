"""The model server when things go wrong: a stuck predict, an unloadable version, a model
unloaded through the API, slow clients during a hot swap (issue 19 items 16, 18, 19 and 20).

Real uvicorn servers on loopback; the hanging model is a pyfunc whose predict waits for a gate
the test opens (tests/integration/_gated_model.py).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.registry.flavors.pyfunc import PythonModel
from fti.serving.app import create_app
from fti.testing.serving import running_server
from tests.integration import _gates

FEATURES = ["f0", "f1", "f2", "f3"]
KEY = {"Authorization": "Bearer k1"}


def _train(seed: int) -> tuple[LogisticRegression, pd.DataFrame]:
    X, y = make_classification(300, n_features=4, random_state=seed)
    return LogisticRegression().fit(X, y), pd.DataFrame(X, columns=FEATURES)


def _body(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, j].tolist()}
            for j, name in enumerate(FEATURES)
        ]
    }


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[fti.Project]:
    """Two models, ``alpha`` and ``beta``, with two versions each; ``production`` on version 1."""
    proj = fti.connect(home=tmp_path / "home", api_keys="k1")
    for name in ("alpha", "beta"):
        for seed in (0, 1):
            model, frame = _train(seed)
            proj.model_registry.register(name, model, input_example=frame.head(5))
        proj.model_registry.set_alias(name, 1, "production")
        proj.serving.deploy(name, model=f"{name}@production", log_requests=False)
    yield proj
    proj.close()


def _tamper(project: fti.Project, name: str, version: int) -> None:
    stored = project.model_registry.get_model(name, version=version).artifact_prefix
    for path in (Path(project.settings.resolved_artifacts_url) / stored).rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes() + b"tampered")


def _served_version(client: httpx.Client, name: str) -> str | None:
    response = client.post(f"/v2/models/{name}/infer", json=_body(np.ones((1, 4))))
    return response.json().get("model_version") if response.status_code == 200 else None


def test_an_unloadable_version_blocks_no_other_deployment_and_is_reported(project: fti.Project) -> None:
    """Item 19: ``alpha``'s alias moves to a tampered version; ``beta``'s later alias move is
    still picked up, ``alpha`` keeps serving its loaded version, and the index names the broken
    version UNAVAILABLE with the reason."""
    mr = project.model_registry
    _tamper(project, "alpha", 2)
    app = create_app(project, poll_interval_s=0.05)
    with running_server(app) as url, httpx.Client(base_url=url, headers=KEY, timeout=20) as c:
        mr.set_alias("alpha", 2, "production")  # alpha sorts first: its failure comes first in every poll
        time.sleep(0.3)
        mr.set_alias("beta", 2, "production")
        assert _until(lambda: _served_version(c, "beta") == "2", 10), "beta's hot swap never happened"
        assert _served_version(c, "alpha") == "1"  # the broken version never took alpha's traffic
        index = {(e["name"], e["version"]): e for e in c.post("/v2/repository/index").json()}
        assert index[("alpha", "1")]["state"] == "READY"
        broken = index[("alpha", "2")]
        assert broken["state"] == "UNAVAILABLE"
        assert "version 2" in broken["reason"] and "digest" in broken["reason"]
        assert index[("beta", "2")]["state"] == "READY"
        assert c.get("/v2/health/ready").status_code == 200  # every deployment is served
        # a failed version is not reloaded at every poll, but a fixed alias is picked up at once
        mr.set_alias("alpha", 1, "production")
        time.sleep(0.3)
        assert [e["version"] for e in c.post("/v2/repository/index").json() if e["name"] == "alpha"] == ["1"]


def test_unloading_one_model_through_the_api_keeps_the_server_ready(project: fti.Project) -> None:
    """Item 20: a model unloaded with the repository API is out of server readiness (as in
    Triton's explicit model control) until it is loaded again; the others keep it ready."""
    with (
        running_server(create_app(project, poll_interval_s=0.05)) as url,
        httpx.Client(base_url=url, headers=KEY, timeout=20) as c,
    ):
        assert c.get("/v2/health/ready").status_code == 200
        assert c.post("/v2/repository/models/alpha/unload", json={}).status_code == 200
        time.sleep(0.3)  # several polls: the poller does not load it back
        assert c.get("/v2/health/ready").status_code == 200
        assert c.get("/v2/models/alpha/ready").status_code == 503
        [alpha] = [e for e in c.post("/v2/repository/index").json() if e["name"] == "alpha"]
        assert alpha["state"] == "UNLOADED" and "unloaded through the repository API" in alpha["reason"]
        assert _served_version(c, "beta") == "1"
        assert c.post("/v2/repository/models/alpha/load", json={}).status_code == 200
        assert c.get("/v2/health/ready").status_code == 200
        assert _served_version(c, "alpha") == "1"


def test_a_poll_resolving_while_a_model_is_unloaded_does_not_load_it_back(
    project: fti.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 20: a poll that was resolving the alias when the unload came (it read "not held"
    before) must not swap the version back in (it did, now and then, in the full suite)."""
    import threading

    from fti.serving import repository

    resolving, release = threading.Event(), threading.Event()
    resolve = repository.resolve

    def slow_resolve(proj: Any, spec: Any) -> Any:
        if spec.name == "alpha" and not release.is_set():
            resolving.set()
            release.wait(10)
        return resolve(proj, spec)

    with (
        running_server(create_app(project, poll_interval_s=0.05)) as url,
        httpx.Client(base_url=url, headers=KEY, timeout=20) as c,
    ):
        assert c.get("/v2/health/ready").status_code == 200
        monkeypatch.setattr(repository, "resolve", slow_resolve)
        assert resolving.wait(10)  # a poll is inside resolve for alpha, past the "held" check
        assert c.post("/v2/repository/models/alpha/unload", json={}).status_code == 200
        release.set()
        time.sleep(0.3)  # that poll finishes, and several more run
        assert c.get("/v2/models/alpha/ready").status_code == 503


def test_a_slow_client_draining_the_old_version_stalls_no_other_deployment(
    project: fti.Project, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 16: a client still uploading its body to ``alpha`` version 1 keeps that version
    draining, but the poll loop goes on: ``beta`` swaps at once. When that client goes away
    mid-body, its request counts as closed by the client (499), not as a server fault."""
    mr = project.model_registry
    with (
        running_server(create_app(project, poll_interval_s=0.05)) as url,
        httpx.Client(base_url=url, headers=KEY, timeout=20) as c,
    ):
        port = int(url.rsplit(":", 1)[1])
        slow = socket.create_connection(("127.0.0.1", port))
        try:
            slow.sendall(
                b"POST /v2/models/alpha/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + b'{"inputs": ['
            )
            time.sleep(0.3)  # routed to alpha version 1, still uploading
            mr.set_alias("alpha", 2, "production")
            mr.set_alias("beta", 2, "production")
            started = time.monotonic()
            assert _until(lambda: _served_version(c, "beta") == "2", 5), "beta waited for alpha's drain"
            assert time.monotonic() - started < 5
            # a poll may read alpha's alias just before it moved and beta's just after
            assert _until(lambda: _served_version(c, "alpha") == "2", 5)
            states = {(e["name"], e["version"]): e["state"] for e in c.post("/v2/repository/index").json()}
            assert states[("alpha", "1")] == "UNLOADING"  # still draining the slow upload
        finally:
            slow.close()
        assert _until(
            lambda: (
                ("alpha", "1")
                not in {(e["name"], e["version"]) for e in c.post("/v2/repository/index").json()}
            ),
            10,
        ), "alpha version 1 was never unloaded after its last request ended"
        metrics = c.get("/metrics").text
    failures = [line for line in metrics.splitlines() if line.startswith("fti_inference_failures_total{")]
    assert [
        line.rsplit(" ", 1)[1] for line in failures if 'model="alpha"' in line and 'status="499"' in line
    ] == ["1.0"]
    assert not [line for line in failures if 'status="500"' in line]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], (
        "a client going away was logged as a fault"
    )


def test_a_stuck_predict_makes_readiness_say_so(tmp_path: Path) -> None:
    """Item 18: a predict call that hangs past the timeout answers 504 and turns server and model
    readiness to 503 (naming the stuck model) until it returns."""
    proj = fti.connect(home=tmp_path / "home")
    example = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    proj.model_registry.register(
        "gated", PythonModel("tests.integration._gated_model:predict"), input_example=example
    )
    proj.serving.deploy("gated", model="gated", scorer="native", timeout_ms=300, log_requests=False)
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]}
    try:
        with (
            running_server(create_app(proj, poll_interval_s=0.05)) as url,
            httpx.Client(base_url=url, timeout=20) as c,
        ):
            assert c.post("/v2/models/gated/infer", json=body).json()["outputs"][0]["data"] == [3.0]
            assert c.get("/v2/health/ready").status_code == 200
            _gates.PREDICT.clear()
            assert c.post("/v2/models/gated/infer", json=body).status_code == 504
            ready = c.get("/v2/health/ready")
            assert ready.status_code == 503
            assert "'gated' version 1: a predict call has been running for" in ready.json()["error"]
            assert c.get("/v2/models/gated/ready").status_code == 503
            [entry] = c.post("/v2/repository/index").json()
            assert entry["state"] == "UNAVAILABLE" and "running for" in entry["reason"]
            _gates.PREDICT.set()
            assert _until(lambda: c.get("/v2/health/ready").status_code == 200, 5)
            assert c.post("/v2/models/gated/infer", json=body).json()["outputs"][0]["data"] == [3.0]
            assert c.post("/v2/repository/index").json()[0]["state"] == "READY"
    finally:
        _gates.PREDICT.set()
        proj.close()
