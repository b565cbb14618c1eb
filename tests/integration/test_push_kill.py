"""kill -9 of the push server mid-stream, 20 times: every acknowledged row reaches the offline
table exactly once, and the online store holds each key's latest row."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

import fti
from fti.streaming.committer import Committer
from fti.testing.servers import free_port

pytestmark = pytest.mark.slow

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TRIALS = 20
KEYS = 50


def start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [
        sys.executable,
        "-m",
        "fti.cli.main",
        "--home",
        str(home),
        "serve",
        "--port",
        str(port),
        "--no-ui",
        "--no-access-log",
        "--poll-interval",
        "0.5",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_live(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(f"{url}/v2/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the server did not start")


def test_kill_9_of_the_push_server_loses_no_acknowledged_row(home: Path) -> None:
    with fti.connect(home=home) as project:
        project.feature_store.get_or_create_feature_group(
            "tx",
            primary_key=["k"],
            event_time="ts",
            online_enabled=True,
            features=[
                fti.Feature("k", "int64"),
                fti.Feature("ts", "timestamp"),
                fti.Feature("amount", "float64"),
            ],
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    acknowledged: dict[int, float] = {}
    state = {"next": 0, "run": True, "retries": 0}
    failures: list[str] = []

    def pusher() -> None:
        with httpx.Client(base_url=url, timeout=5) as client:
            while state["run"]:
                i = state["next"]
                row = {"k": i % KEYS, "ts": (T0 + timedelta(seconds=i)).isoformat(), "amount": float(i)}
                try:
                    answer = client.post("/v1/feature-groups/tx/push", json={"rows": [row]})
                except httpx.HTTPError:
                    state["retries"] += 1  # not acknowledged: retry the same row (it may be stored)
                    time.sleep(0.02)
                    continue
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code}: {answer.text}")
                    return
                acknowledged[i] = float(i)
                state["next"] = i + 1

    thread = threading.Thread(target=pusher, daemon=True)
    thread.start()
    rng = random.Random(17)
    try:
        for _ in range(TRIALS):
            proc = start_server(home, port)
            wait_live(url, proc)
            before = len(acknowledged)
            deadline = time.monotonic() + 30
            while len(acknowledged) == before and not failures:  # the first push imports the push path
                assert time.monotonic() < deadline, "no push was acknowledged in this trial"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.8))  # then kill it mid-stream
            assert not failures, failures
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
    finally:
        state["run"] = False
        thread.join(timeout=30)
    assert len(acknowledged) > TRIALS * 5 and state["retries"] > 0

    with fti.connect(home=home) as project:  # a restarted process replays what the kills left buffered
        replay = Committer(project)
        replay.commit(force=True)
        replay.stop()
        assert project.backends.buffer.topics("") == []
        fg = project.feature_store.get_feature_group("tx")
        table = fg.read_arrow()
        stored = list(
            zip(
                table.column("k").to_pylist(),
                table.column("ts").to_pylist(),
                table.column("amount").to_pylist(),
                strict=True,
            )
        )
        pairs = [(k, ts) for k, ts, _ in stored]
        assert len(pairs) == len(set(pairs))  # idempotent: no row twice, retries included
        by_pair = {(k, ts): amount for k, ts, amount in stored}
        for i, amount in acknowledged.items():
            assert by_pair[(i % KEYS, T0 + timedelta(seconds=i))] == amount
        # only the row in flight at a kill may be stored unacknowledged
        assert len(stored) <= len(acknowledged) + TRIALS
        online = fg.online_lookup([{"k": k} for k in range(KEYS)])
        latest: dict[int, datetime] = {}
        for k, ts, _ in stored:
            latest[k] = max(latest.get(k, ts), ts)
        assert [r["ts"] for r in online] == [latest[k] for k in range(KEYS)]  # type: ignore[index]
