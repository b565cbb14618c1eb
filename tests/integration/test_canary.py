"""Canary rollouts on a real server on loopback, advanced by real schedulers: a candidate failing
30 % of its requests is rolled back at its first step (and the requests it failed are the only
failures); a good candidate reaches 100 % and the alias moves, across a scheduler killed with
SIGKILL mid-rollout and a new one started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import ConflictError, NotFoundError, ValidationError
from fti.pipelines.scheduler import ManualClock, Scheduler
from fti.registry.flavors.pyfunc import PythonModel
from fti.serving.app import create_app
from fti.serving.rollouts.machine import advance
from fti.serving.routing import Split
from fti.testing.serving import running_server
from tests.integration import _rollout_models

FEATURES = ["a", "b", "c"]


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[fti.Project]:
    example = pd.DataFrame(np.random.default_rng(0).uniform(0.5, 1, size=(5, 3)), columns=FEATURES)
    proj = fti.connect(home=tmp_path / "home")
    mr = proj.model_registry
    for function in ("good", "flaky", "good"):  # v1 champion, v2 bad candidate, v3 good candidate
        mr.register(
            "clf", PythonModel(f"tests.integration._rollout_models:{function}"), input_example=example
        )
    mr.set_alias("clf", 1, "production")
    # one row per predict call: a failing row never takes other requests' rows down with it
    proj.serving.deploy("clf", model="clf@production", scorer="native", max_batch_size=1, log_requests=False)
    _rollout_models.FAILING.set()
    yield proj
    _rollout_models.FAILING.clear()
    proj.close()


def _body(a: float) -> dict[str, Any]:
    return {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in zip(FEATURES, (a, 0.5, 0.5), strict=True)]}  # fmt: skip


def _wait(condition: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _canary_share(url: str) -> float | None:
    r = httpx.post(f"{url}/v2/models/clf/infer", json=_body(0.9), headers={"X-Fti-Route-Key": "probe"})
    return r.json().get("parameters", {}).get("variant") if r.status_code == 200 else None


def test_a_candidate_failing_30_percent_is_rolled_back_at_the_first_step(canary: fti.Project) -> None:
    proj = canary
    rng = np.random.default_rng(2)
    with (
        running_server(create_app(proj, poll_interval_s=0.1)) as url,
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        ro = proj.serving.rollout("clf", to="clf:2", steps=[20, 50, 100], every="1h",
                                  gates={"error_rate": "< 0.05"}, min_requests=30)  # fmt: skip
        assert proj.serving.get("clf").spec.variants == (("canary", "clf:2", 20.0),)
        _wait(lambda: "clf/canary" in {e["name"] for e in c.post("/v2/repository/index", json={}).json()
                                       if e["state"] == "READY"}, "the canary to load")  # fmt: skip
        split = Split("clf", (("canary", 20.0),))
        sent = []
        for i in range(400):
            a = float(rng.uniform(0, 1))
            r = c.post("/v2/models/clf/infer", json=_body(a), headers={"X-Fti-Route-Key": f"k{i}"})
            sent.append((split.pick(f"k{i}"), a, r))
        time.sleep(0.5)  # the server flushes its per-variant counters at every poll
        scheduler = Scheduler(
            proj, clock=ManualClock(datetime.now(UTC)), duties=[lambda now: advance(proj, now)]
        )
        scheduler.tick()  # within the step's hour: the failed gate rolls back at once
        status = ro.status()
        _wait(lambda: proj.serving.get("clf").spec.variants == (), "the canary variant to be removed")
        _wait(  # the server dropped the split: the canary left its index and answers name no variant
            lambda: (
                "clf/canary" not in {e["name"] for e in c.post("/v2/repository/index", json={}).json()}
                and _canary_share(url) is None
            ),
            "traffic back to the champion",
        )
        after = [c.post("/v2/models/clf/infer", json=_body(float(a))) for a in rng.uniform(0, 1, 50)]
    failed = {i for i, (_, _, r) in enumerate(sent) if r.status_code != 200}
    expected = {
        i for i, (variant, a, _) in enumerate(sent) if variant == "canary" and _rollout_models.fails(a)
    }
    assert failed == expected and len(expected) > 10  # the candidate's failures, and nothing else
    assert all(r.json()["parameters"]["variant"] == v for v, _, r in sent if r.status_code == 200)
    assert all(r.status_code == 200 for r in after)
    assert status["state"] == "rolled_back" and status["step"] == 1
    assert "error_rate" in status["reason"] and "is not < 0.05" in status["reason"]
    last = status["events"][-1]
    assert last["action"] == "rolled_back"
    figures = last["figures"]["canary"]
    assert figures["requests"] == sum(v == "canary" for v, _, _ in sent)
    assert figures["errors"] == len(expected)
    assert figures["error_rate"] == pytest.approx(len(expected) / figures["requests"])
    assert proj.model_registry.aliases("clf") == {"production": 1}  # the alias never moved


def test_bad_rollouts_are_refused_and_change_nothing(canary: fti.Project) -> None:
    proj = canary
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        (
            {"to": "clf:2", "steps": [50, 25, 100]},
            ValidationError,
            "increasing percentages of the traffic ending at 100",
        ),
        ({"to": "clf:2", "steps": [25, 50]}, ValidationError, "ending at 100"),
        ({"to": "clf:2", "steps": [0, 100]}, ValidationError, "increasing percentages"),
        ({"to": "clf:2", "every": "soon"}, ValidationError, "every must be a duration"),
        ({"to": "clf:2", "every": 0}, ValidationError, "longer than 0"),
        ({"to": "clf:2", "gates": {"roc": ">= 0.9"}}, ValidationError, "unknown gate 'roc'"),
        ({"to": "clf:2", "gates": {"error_rate": "small"}}, ValidationError, "invalid gate error_rate"),
        ({"to": "clf:2", "min_requests": 0}, ValidationError, "min_requests must be a positive integer"),
        ({"to": "clf:9"}, NotFoundError, "has no version 9"),
        ({"to": "other:1"}, ValidationError, "must be a version of model 'clf'"),
        ({"to": "clf:1"}, ValidationError, "nothing to roll out"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            proj.serving.rollout("clf", **kwargs)
    assert proj.serving.get("clf").spec.variants == ()
    with pytest.raises(NotFoundError, match="has no rollout"):
        proj.serving.get_rollout("clf")
    proj.serving.deploy("pinned", model="clf:1", scorer="native")
    with pytest.raises(ValidationError, match="not an alias"):
        proj.serving.rollout("pinned", to="clf:2")
    ro = proj.serving.rollout("clf", to="clf:3", every="1h")
    with pytest.raises(ConflictError, match="already has a running rollout"):
        proj.serving.rollout("clf", to="clf:2")
    with pytest.raises(ConflictError, match="owns its traffic split"):  # a redeploy would drop the canary
        proj.serving.deploy("clf", model="clf@production", scorer="native")
    assert proj.serving.get("clf").spec.variants == (("canary", "clf:3", 5.0),)
    with pytest.raises(ConflictError, match="is running; cannot resume"):
        ro.resume()
    ro.pause(reason="investigating")
    assert ro.state == "paused" and proj.serving.get("clf").spec.variants == (("canary", "clf:3", 5.0),)
    ro.abort(reason="not today")
    assert ro.state == "aborted" and proj.serving.get("clf").spec.variants == ()
    assert [e.action for e in ro.events()] == ["started", "paused", "aborted"]
    with pytest.raises(NotFoundError, match=r"no active rollout \(#1 is aborted\)"):
        ro.pause()
    assert proj.model_registry.aliases("clf") == {"production": 1}


def _scheduler(home: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "fti.cli.main", "--home", str(home), "scheduler", "--tick", "0.2", "--lease-ttl", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_good_candidate_reaches_100_percent_across_a_killed_scheduler(canary: fti.Project) -> None:
    proj = canary
    home = proj.settings.home
    results: list[int] = []
    stop = threading.Event()
    with running_server(create_app(proj, poll_interval_s=0.1)) as url:

        def load() -> None:
            rng = np.random.default_rng(4)
            with httpx.Client(base_url=url, timeout=30) as c:
                while not stop.is_set():
                    results.append(
                        c.post("/v2/models/clf/infer", json=_body(float(rng.uniform(0, 1)))).status_code
                    )

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        ro = proj.serving.rollout("clf", to="clf:3", steps=[30, 100], every="3s",
                                  gates={"error_rate": "< 0.01", "p99_ms": "< 5000"}, min_requests=20)  # fmt: skip
        first = _scheduler(home)
        try:
            _wait(lambda: ro.status()["step"] == 2, "the first scheduler to advance to 100 %", timeout=60)
            first.send_signal(signal.SIGKILL)  # dies holding the lease, mid-rollout
            first.wait(10)
            assert ro.state == "running"
            second = _scheduler(home)
            try:
                _wait(lambda: ro.status()["state"] != "running", "the second scheduler to finish", timeout=60)
            finally:
                second.send_signal(signal.SIGINT)
                second.wait(30)
        finally:
            if first.poll() is None:
                first.kill()
        _wait(lambda: proj.serving.get("clf").spec.variants == (), "the canary variant to be removed")
        stop.set()
        for t in threads:
            t.join()
    status = ro.status()
    assert status["state"] == "succeeded", status
    assert [e["action"] for e in status["events"]] == ["started", "advanced", "promoted"]
    advanced = status["events"][1]
    assert advanced["percent"] == 100 and advanced["figures"]["canary"]["requests"] >= 20
    assert advanced["figures"]["canary"]["errors"] == 0
    assert proj.model_registry.aliases("clf") == {"production": 3}
    assert proj.model_registry.alias_history("clf", "production")[-1].reason.startswith(f"rollout #{ro.id}")
    assert results and set(results) == {200}
