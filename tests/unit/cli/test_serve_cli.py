"""``fti keys`` and ``fti serve``: the real command line, a real server process on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
from click.testing import CliRunner
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.cli.main import cli


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, _ = run(home, "keys", "create", "ci", "--json")
    assert code == 0
    key = json.loads(out)["key"]
    assert key.startswith("fti_")
    code, out, _ = run(home, "keys", "list", "--json")
    [listed] = json.loads(out)
    assert (listed["name"], listed["active"], key.startswith(listed["prefix"])) == ("ci", True, True)
    assert key not in out
    assert run(home, "keys", "revoke", "ci")[0] == 0
    assert json.loads(run(home, "keys", "list", "--json")[1])[0]["active"] is False
    code, _, err = run(home, "keys", "revoke", "ci")
    assert code == 2 and "no active API key named 'ci'" in err
    code, _, err = run(home, "keys", "create", "ci")
    assert code == 2 and "already exists" in err


def test_keys_create_with_a_role(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, _ = run(home, "keys", "create", "viewer", "--role", "reader", "--json")
    assert code == 0 and json.loads(out)["role"] == "reader"
    assert run(home, "keys", "create", "ops")[0] == 0  # admin by default
    code, out, _ = run(home, "keys", "list", "--json")
    assert {k["name"]: k["role"] for k in json.loads(out)} == {"viewer": "reader", "ops": "admin"}
    code, _, err = run(home, "keys", "create", "x", "--role", "owner")
    assert code == 2 and "'owner' is not one of 'reader', 'writer', 'admin'" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fti_serve_runs_the_deployments_and_predict_goes_over_http(tmp_path: Path) -> None:
    home = tmp_path / "home"
    X, y = make_classification(200, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    model = LogisticRegression().fit(X, y)
    with fti.connect(home=home) as project:
        project.model_registry.register(
            "clf", model, input_example=pd.DataFrame(X[:5], columns=["a", "b", "c"])
        )
        project.serving.deploy("clf", model="clf", log_requests=False)
    port, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "FTI_API_KEYS": "k1"}
    args = [sys.executable, "-m", "fti.cli.main", "--home", str(home), "serve", "--port", str(port)]
    args += ["--grpc-port", str(grpc_port), "--workers", "2"]  # the workers share the gRPC port
    process = subprocess.Popen([*args, "--poll-interval", "0.2"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        auth = {"Authorization": "Bearer k1"}
        assert httpx.get(f"{url}/v2/models/clf").status_code == 401
        assert httpx.get(f"{url}/v2/models/clf", headers=auth).json()["inputs"][0]["name"] == "a"
        announced = json.loads((home / "serving" / "server.json").read_text())
        assert announced["url"] == url
        with fti.connect(home=home, api_keys="k1") as project:
            result = project.serving.get("clf").predict([{"a": r[0], "b": r[1], "c": r[2]} for r in X[:3]])
        assert result["predict"] == model.predict(X[:3]).tolist()
        import tritonclient.grpc as triton

        grpc_client = triton.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
        try:
            assert grpc_client.is_server_ready()
            inputs = []
            for j, name in enumerate(["a", "b", "c"]):
                inputs.append(triton.InferInput(name, [3], "FP64"))
                inputs[-1].set_data_from_numpy(X[:3, j].copy())
            answer = grpc_client.infer("clf", inputs, headers={"authorization": "Bearer k1"})
            assert answer.as_numpy("predict").tolist() == model.predict(X[:3]).tolist()
        finally:
            grpc_client.close()
        # one request over HTTP and one over gRPC, whichever workers took them: /metrics, from
        # whichever worker answers, sums the two workers' counters
        for _ in range(4):
            metrics = httpx.get(f"{url}/metrics", headers=auth).text
            counted = [
                line for line in metrics.splitlines() if line.startswith("fti_inference_requests_total{")
            ]
            assert len(counted) == 1, counted
            series, value = counted[0].rsplit(" ", 1)
            assert series == 'fti_inference_requests_total{model="clf",variant="champion",version="1"}'
            assert float(value) == 2.0
            loaded = [line for line in metrics.splitlines() if line.startswith("fti_model_loaded{")]
            assert loaded == ['fti_model_loaded{model="clf",version="1"} 1.0'], loaded
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert '"path": "/v2/models/clf/infer", "status": 200' in err.replace('":', '": ').replace(',"', ', "')
    assert not (home / "serving" / "server.json").exists()


def test_serve_help_lists_the_options(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "serve", "--help")
    assert code == 0
    for option in ("--host", "--port", "--workers", "--lazy", "--threads", "--no-ui", "--grpc-port"):
        assert option in out


def test_fti_ui_serves_the_web_ui(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        project.feature_store.get_or_create_feature_group(
            "clicks", primary_key=["id"], description="web clicks"
        )
    port = _free_port()
    args = [sys.executable, "-m", "fti.cli.main", "--home", str(home), "ui", "--port", str(port)]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"{url}/feature-groups")
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "the UI did not start"
                time.sleep(0.1)
        assert page.status_code == 200
        assert '/feature-groups/clicks/1">clicks</a>' in page.text and "web clicks" in page.text
        assert "No API keys are configured" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"fti web UI of project 'default' on http://127.0.0.1:{port}/" in err


def _register_gated(home: Path) -> None:
    """A pyfunc deployment whose loading waits until the test creates a gate file."""
    from fti.registry.flavors.pyfunc import PythonModel

    with fti.connect(home=home) as project:
        model = PythonModel("tests.integration._gated_model:predict")
        project.model_registry.register("gated", model, input_example=pd.DataFrame({"x": [1.0, 2.0]}))
        project.serving.deploy("gated", model="gated", scorer="native", log_requests=False)


def test_fti_serve_listens_at_once_and_answers_loading_until_loaded(tmp_path: Path) -> None:
    """Issue 19 item 32: while its deployments load the server answers: live 200, ready and
    infer 503 ``loading``; once loaded, 200."""
    home = tmp_path / "home"
    _register_gated(home)
    gate = tmp_path / "gate"
    port = _free_port()
    env = {**os.environ, "FTI_TEST_IMPORT_GATE": str(gate)}
    args = [
        sys.executable,
        "-m",
        "fti.cli.main",
        "--home",
        str(home),
        "serve",
        "--port",
        str(port),
        "--no-ui",
    ]
    process = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]}
    try:
        deadline = time.monotonic() + 30
        while True:  # the model cannot finish loading before the gate exists: this is the listener
            try:
                live = httpx.get(f"{url}/v2/health/live")
                break
            except httpx.TransportError:
                assert process.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not listen while loading"
                time.sleep(0.1)
        assert live.status_code == 200
        ready = httpx.get(f"{url}/v2/health/ready")
        assert ready.status_code == 503
        assert ready.json()["error"].startswith("loading 1 deployment(s): gated")
        refused = httpx.post(f"{url}/v2/models/gated/infer", json=body)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"].startswith("loading: model 'gated' is being loaded")
        index = httpx.post(f"{url}/v2/repository/index").json()
        assert index == [{"name": "gated", "version": None, "state": "LOADING", "reason": ""}]
        gate.touch()
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "the deployment never finished loading"
            time.sleep(0.1)
        answer = httpx.post(f"{url}/v2/models/gated/infer", json=body)
        assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == [3.0]
    finally:
        gate.touch()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def test_fti_serve_on_a_busy_port_fails_before_loading_any_model(tmp_path: Path) -> None:
    """Issue 19 item 32: a port in use is reported at once, before any model is loaded."""
    home = tmp_path / "home"
    X, y = make_classification(200, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    with fti.connect(home=home) as project:
        project.model_registry.register(
            "clf", LogisticRegression().fit(X, y), input_example=pd.DataFrame(X[:5], columns=["a", "b", "c"])
        )
        project.serving.deploy("clf", model="clf", log_requests=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = [sys.executable, "-m", "fti.cli.main", "--home", str(home), "serve", "--port", str(port)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert "loaded clf" not in done.stderr  # no model was loaded first
    assert not (home / "serving" / "server.json").exists()


def test_a_busy_grpc_port_is_reported_before_anything_loads(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(tmp_path / "home", "serve", "--port", str(_free_port()), "--grpc-port", str(port))
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in err and "--grpc-port" in err
