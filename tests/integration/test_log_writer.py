"""The inference log's writer process: a real server, its real writer child, real Delta tables and
catalogs (SQLite and PostgreSQL; S3). Rows reach the log when the writer is killed and restarted,
when the whole server is killed (the next server adopts its spool), and with several workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import create_app
from fti.serving.log_spool import spool_root
from fti.testing.servers import S3Server
from fti.testing.serving import running_server

FEATURES = ["f0", "f1", "f2", "f3"]
X, Y = make_classification(200, n_features=4, random_state=0)


def _deploy(project: fti.Project) -> LogisticRegression:
    model = LogisticRegression().fit(X, Y)
    project.model_registry.register("clf", model, input_example=pd.DataFrame(X[:5], columns=FEATURES))
    project.serving.deploy("clf", model="clf", log_requests=True)
    return model


def _body(i: int, request_id: str) -> dict[str, object]:
    row = X[i % len(X)]
    return {
        "id": request_id,
        "inputs": [
            {"name": n, "shape": [1], "datatype": "FP64", "data": [float(row[j])]}
            for j, n in enumerate(FEATURES)
        ],
    }


def _send(url: str, ids: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for i, request_id in enumerate(ids):
            response = client.post("/v2/models/clf/infer", json=_body(i, request_id))
            assert response.status_code == 200, response.text


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def _wait(condition: Callable[[], bool], seconds: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _children(parent: int) -> list[int]:
    """The processes ``parent`` started (from any of its threads)."""
    found = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread ended
            continue
    return found


def _children_running(parent: int, marker: bytes) -> list[int]:
    """The processes ``parent`` started whose command line holds ``marker``."""
    found = []
    for child in _children(parent):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if marker in command:
            found.append(child)
    return found


def _writers(parent: int) -> list[int]:
    """The inference-log writer processes started by ``parent``."""
    return _children_running(parent, b"fti.serving.log_writer")


def _logged(project: fti.Project) -> list[str]:
    try:
        group = project.feature_store.get_feature_group("clf_inference_log")
    except fti.NotFoundError:
        return []
    rows = group.read()
    return sorted(rows["request_id"]) if "request_id" in rows else []  # created, nothing committed yet


def test_a_killed_writer_is_restarted_and_no_row_is_lost_or_doubled(project: fti.Project) -> None:
    _deploy(project)
    app = create_app(project, poll_interval_s=0.2)
    first, second = [f"a{i:02d}" for i in range(20)], [f"b{i:02d}" for i in range(20)]
    with running_server(app) as url:
        _send(url, first)
        _wait(lambda: _metric(url, "fti_inference_log_written_total") == 20, what="the first rows")
        [writer] = _writers(os.getpid())
        assert _metric(url, "fti_inference_log_writer_cpu_seconds_total") > 0
        os.kill(writer, signal.SIGKILL)
        _send(url, second)  # answered while the writer is dead: spooled meanwhile
        _wait(lambda: _metric(url, "fti_inference_log_written_total") == 40, what="the rows after the kill")
        assert _metric(url, "fti_inference_log_writer_restarts_total") == 1
        [restarted] = _writers(os.getpid())
        assert restarted != writer
        assert _logged(project) == sorted(first + second)  # committed by the new writer, once
    assert _logged(project) == sorted(first + second)
    assert list(spool_root(project.settings.home, project.name).iterdir()) == []  # removed at stop


SERVER = """
import sys, time
import fti
from fti.serving import request_log
from fti.serving.app import create_app
from fti.testing.serving import running_server

# segments never close by age: whatever this server logs stays spooled until it stops
request_log.RequestLogger.__init__.__kwdefaults__["flush_interval_s"] = 3600.0
project = fti.connect(home=sys.argv[1])
with running_server(create_app(project, poll_interval_s=0.2)) as url:
    print(url, flush=True)
    time.sleep(600)
"""


def test_rows_spooled_by_a_killed_server_are_committed_once_by_the_next(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        _deploy(project)
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER), str(home)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: killed with its writer, both at once
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        ids = [f"k{i:02d}" for i in range(30)]
        _send(url, ids)
        root = spool_root(home, "default")
        spooled = lambda: sum(p.stat().st_size for p in root.rglob("*.partial"))  # noqa: E731
        _wait(lambda: spooled() > 0 and bool(_writers(process.pid)), what="the rows to be spooled")
        time.sleep(0.5)  # the last hand-off
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    with fti.connect(home=home) as project:
        assert _logged(project) == []  # nothing was committed before the kill
        [left] = list(root.iterdir())  # the dead server's spool, its segment still open
        assert list(left.glob(".*.partial"))
        app = create_app(project, poll_interval_s=0.2)
        with running_server(app) as url:  # its writer adopts the spool left behind
            _wait(lambda: _logged(project) == ids, what="the adopted rows")
            _send(url, ["new"])
        assert _logged(project) == sorted([*ids, "new"])
        assert list(root.iterdir()) == []


def test_the_writer_of_a_killed_server_commits_what_it_had_spooled(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        _deploy(project)
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER), str(home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        ids = [f"d{i:02d}" for i in range(25)]
        _send(url, ids)
        root = spool_root(home, "default")
        _wait(
            lambda: any(p.stat().st_size for p in root.rglob("*.partial")) and bool(_writers(process.pid)),
            what="the rows to be spooled",
        )
        time.sleep(0.5)  # the last hand-off
        [writer] = _writers(process.pid)
    finally:
        process.kill()  # the server only: its writer sees the pipe close
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    _wait(
        lambda: not Path(f"/proc/{writer}").exists() or b"zombie" in _state(writer), what="the writer to exit"
    )
    with fti.connect(home=home) as project:
        assert _logged(project) == ids  # the segment its server had open, committed
    assert list(root.iterdir()) == []


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return b"zombie"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_each_worker_of_fti_serve_has_a_writer_and_a_stop_commits_every_row(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        _deploy(project)
    port = _free_port()
    command = [sys.executable, "-m", "fti.cli.main", "--home", str(home), "serve", "--port", str(port)]
    process = subprocess.Popen([*command, "--workers", "2", "--no-ui"], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    ids = [f"w{i:03d}" for i in range(120)]
    try:
        _wait(lambda: _ready(url), what="the server")

        def send(i: int) -> int:  # a connection per request: the workers share them
            return httpx.post(f"{url}/v2/models/clf/infer", json=_body(i, ids[i]), timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(send, range(len(ids)))) == {200}
        workers = _children_running(process.pid, b"spawn_main")  # not its resource tracker
        assert len(workers) == 2
        # both workers took requests (the kernel spreads the connections): each started a writer
        _wait(lambda: all(_writers(w) for w in workers), seconds=30, what="a writer per worker")
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    with fti.connect(home=home) as project:
        assert _logged(project) == ids  # no row left behind by the stop
    assert list(spool_root(home, "default").iterdir()) == []


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.s3
def test_the_writer_commits_to_delta_tables_on_s3(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"fti-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    # credentials in the environment, as on AWS: the writer process inherits them
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    settings: dict[str, object] = {
        "offline_url": f"s3://{bucket}/offline",
        "s3_endpoint_url": s3_server.endpoint_url,
        "s3_region": s3_server.region,
        "s3_allow_http": True,
    }
    with fti.connect(home=tmp_path / "home", **settings) as project:
        model = _deploy(project)
        with running_server(create_app(project, poll_interval_s=0.2)) as url:
            ids = [f"s{i:02d}" for i in range(10)]
            _send(url, ids)
            _wait(lambda: _metric(url, "fti_inference_log_written_total") == 10, what="the rows on S3")
            assert _writers(os.getpid())  # committed by the writer process, not at the stop
        log = project.feature_store.get_feature_group("clf_inference_log").read().sort_values("request_id")
        assert log["request_id"].tolist() == ids
        np.testing.assert_array_equal(log["predict"], model.predict(X[:10]))
