"""Shadow traffic on a real server: responses are bit-identical with and without the shadow, the
shadow's outputs reach the inference log under the primary's request id, a shadow that raises on
every request fails no response, and a full queue drops copies with a counter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
from fti.serving.metrics import ServerMetrics
from fti.serving.shadow import SHADOW_REQUEST_SUFFIX, ShadowQueue
from fti.testing.serving import running_server
from tests.integration import _rollout_models

FEATURES = ["a", "b", "c"]


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def shadowed(tmp_path: Path) -> Iterator[dict[str, Any]]:
    X, y = make_classification(300, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    example = pd.DataFrame(X[:5], columns=FEATURES)
    proj = fti.connect(home=tmp_path / "home")
    mr = proj.model_registry
    champion = LogisticRegression().fit(X, y)
    candidate = LogisticRegression(C=0.01).fit(X, 1 - y)
    mr.register("clf", champion, input_example=example)
    mr.register("clf", candidate, input_example=example)
    mr.register("broken", PythonModel("tests.integration._rollout_models:broken"), input_example=example)
    mr.set_alias("clf", 1, "production")
    mr.set_alias("clf", 2, "candidate")
    rows = np.random.default_rng(1).normal(size=(300, 3))
    bodies = [
        {"id": f"r{i}", "inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [float(row[j])]}
                                   for j, n in enumerate(FEATURES)]}
        for i, row in enumerate(rows)
    ]  # fmt: skip
    yield {"project": proj, "bodies": bodies, "rows": rows, "candidate": candidate, "champion": champion}
    _rollout_models.FAILING.clear()
    proj.close()


def _send_all(url: str, bodies: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
    def send(chunk: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
        with httpx.Client(base_url=url, timeout=30) as c:
            return [
                (r.status_code, r.content) for r in (c.post("/v2/models/clf/infer", json=b) for b in chunk)
            ]

    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(send, [bodies[i::4] for i in range(4)]))
    return [x for i in range(len(bodies)) for x in [parts[i % 4][i // 4]]]


def _shadow_loaded(url: str) -> bool:
    index = httpx.post(f"{url}/v2/repository/index", json={}).json()
    return any(e["name"] == "clf/shadow" and e["state"] == "READY" for e in index)


def test_responses_are_bit_identical_and_the_shadow_is_logged(shadowed: dict[str, Any]) -> None:
    proj, bodies = shadowed["project"], shadowed["bodies"]
    # one scorer and no batching, so that nothing but the shadow could change a byte
    fixed = {"scorer": "native", "max_batch_size": 1}
    proj.serving.deploy("clf", model="clf@production", **fixed)
    with running_server(create_app(proj, poll_interval_s=0.1)) as url:
        without = _send_all(url, bodies)
    proj.serving.deploy("clf", model="clf@production", shadow="clf@candidate", **fixed)
    with running_server(create_app(proj, poll_interval_s=0.1)) as url:
        assert _shadow_loaded(url)
        with_shadow = _send_all(url, bodies)
        metrics = httpx.get(f"{url}/metrics").text
    assert all(status == 200 for status, _ in without)
    assert with_shadow == without  # same status, same bytes, request by request
    assert _metric(
        metrics, "fti_inference_requests_total", model="clf", variant="shadow", version="2"
    ) == len(bodies)
    log = proj.feature_store.get_feature_group("clf_inference_log").read()
    shadow = log[log["variant"] == "shadow"].sort_values("request_id")
    assert len(shadow) == len(bodies) and set(shadow["model_version"]) == {2}
    by_id = {f"r{i}": row for i, row in enumerate(shadowed["rows"])}
    # the shadow's rows carry the primary's request id + "#shadow", beside the primary's own rows
    paired = [r.removesuffix(SHADOW_REQUEST_SUFFIX) for r in shadow["request_id"]]
    assert all(r.endswith(SHADOW_REQUEST_SUFFIX) for r in shadow["request_id"])
    expected = shadowed["candidate"].predict(np.array([by_id[r] for r in paired]))
    np.testing.assert_array_equal(shadow["predict"].to_numpy(), expected)
    # the primary's rows of both runs (timestamps differ, so both are kept): none taken by a shadow's
    primary = log[log["variant"] != "shadow"].sort_values("request_id")
    assert len(primary) == 2 * len(bodies) and set(primary["model_version"]) == {1}
    assert sorted(primary["request_id"]) == sorted(paired * 2)
    expected = shadowed["champion"].predict(np.array([by_id[r] for r in primary["request_id"]]))
    np.testing.assert_array_equal(primary["predict"].to_numpy(), expected)


def test_a_shadow_that_raises_on_every_request_fails_no_response(shadowed: dict[str, Any]) -> None:
    proj, bodies = shadowed["project"], shadowed["bodies"]
    proj.serving.deploy("clf", model="clf@production", shadow="broken:1", scorer="native")
    _rollout_models.FAILING.set()
    with running_server(create_app(proj, poll_interval_s=0.1)) as url:
        assert _shadow_loaded(url)
        results = _send_all(url, bodies)
        for _ in range(100):  # the copies are predicted after the responses: wait for them
            metrics = httpx.get(f"{url}/metrics").text
            if _metric(metrics, "fti_inference_failures_total", variant="shadow") == len(bodies):
                break
            asyncio.run(asyncio.sleep(0.05))
    assert [status for status, _ in results if status != 200] == []
    assert _metric(
        metrics, "fti_inference_failures_total", model="clf", variant="shadow", status="500"
    ) == len(bodies)
    assert _metric(metrics, "fti_inference_failures_total", variant="champion") == 0


def test_a_full_queue_drops_copies_with_a_counter() -> None:
    metrics = ServerMetrics()
    queue = ShadowQueue(None, metrics, None, capacity=5)  # type: ignore[arg-type]  # never started

    async def flood() -> None:
        for i in range(12):
            queue.submit("clf", {"inputs": []}, f"r{i}")

    asyncio.run(flood())
    assert (
        _metric(metrics.render().decode(), "fti_shadow_dropped_total", model="clf", reason="queue_full") == 7
    )
