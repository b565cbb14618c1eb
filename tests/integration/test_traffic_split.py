"""Traffic splits on real servers on loopback with concurrent clients: shares, stickiness across
two servers on one catalog, per-variant responses, metrics and inference-log rows, and each
variant enriching with its own feature view version."""

from __future__ import annotations

import contextlib
import math
import random
from collections import Counter
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
from fti.serving.app import create_app
from fti.testing.serving import running_server

FEATURES = ["a", "b", "c"]


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _row(a: float, b: float = 0.5, c: float = -1.0) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
            for n, v in zip(FEATURES, (a, b, c), strict=True)
        ]
    }


@pytest.fixture
def split_project(tmp_path: Path) -> Iterator[fti.Project]:
    X, y = make_classification(300, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    example = pd.DataFrame(X[:5], columns=FEATURES)
    proj = fti.connect(home=tmp_path / "home")
    mr = proj.model_registry
    mr.register("clf", LogisticRegression().fit(X, y), input_example=example)
    mr.register("clf", LogisticRegression(C=0.01).fit(X, 1 - y), input_example=example)
    mr.set_alias("clf", 1, "production")
    yield proj
    proj.close()


def test_shares_over_20000_requests_are_within_3_standard_errors(split_project: fti.Project) -> None:
    proj = split_project
    proj.serving.deploy(
        "clf", model="clf@production", variants={"challenger": ("clf:2", 20)}, max_batch_delay_ms=0
    )
    n, weight = 20_000, 0.20
    rng = random.Random(0)
    bodies = [_row(rng.uniform(-2, 2)) for _ in range(n)]
    with running_server(create_app(proj, poll_interval_s=0.2)) as url:

        def send(chunk: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
            with httpx.Client(base_url=url, timeout=30) as c:
                out = []
                for body in chunk:
                    r = c.post("/v2/models/clf/infer", json=body)
                    data = r.json()
                    out.append(
                        (r.status_code, data.get("parameters", {}).get("variant"), data.get("model_version"))
                    )
                return out

        with ThreadPoolExecutor(8) as pool:
            results = [x for part in pool.map(send, [bodies[i::8] for i in range(8)]) for x in part]
        metrics = httpx.get(f"{url}/metrics").text
    assert [s for s, _, _ in results if s != 200] == []
    served = Counter((v, version) for _, v, version in results)
    assert set(served) == {("champion", "1"), ("challenger", "2")}  # each variant answers with its version
    share = served[("challenger", "2")] / n
    se = math.sqrt(weight * (1 - weight) / n)
    assert abs(share - weight) < 3 * se, (share, weight, se)
    assert (
        _metric(metrics, "fti_inference_requests_total", model="clf", variant="challenger", version="2")
        == (served[("challenger", "2")])
    )
    assert (
        _metric(metrics, "fti_inference_requests_total", model="clf", variant="champion", version="1")
        == (served[("champion", "1")])
    )
    log = proj.feature_store.get_feature_group("clf_inference_log").read()
    assert len(log) == n
    assert Counter(zip(log["variant"], log["model_version"], strict=True)) == {
        ("champion", 1): served[("champion", "1")],
        ("challenger", 2): served[("challenger", "2")],
    }


def test_sticky_routing_agrees_across_two_servers_on_one_catalog(split_project: fti.Project) -> None:
    proj = split_project
    proj.serving.deploy(
        "clf", model="clf@production", variants={"challenger": ("clf:2", 30)}, sticky="a", log_requests=False
    )
    entities = [round(0.01 * i, 2) for i in range(300)]
    second = fti.connect(home=proj.settings.home)  # another process's view of the same catalog
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(running_server(create_app(p, poll_interval_s=0.2))) for p in (proj, second)
        ]
        clients = [stack.enter_context(httpx.Client(base_url=u, timeout=30)) for u in urls]
        seen: dict[float, set[str]] = {a: set() for a in entities}
        order = [a for a in entities for _ in range(4)]
        random.Random(1).shuffle(order)

        def send(i_a: tuple[int, float]) -> None:
            i, a = i_a
            r = clients[i % 2].post("/v2/models/clf/infer", json=_row(a, b=random.random()))
            assert r.status_code == 200, r.text
            seen[a].add(r.json()["parameters"]["variant"])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, enumerate(order)))
        # the header wins over the sticky input
        headed = {clients[0].post("/v2/models/clf/infer", json=_row(0.0), headers={"X-Fti-Route-Key": f"k{i}"})
                  .json()["parameters"]["variant"] for i in range(60)}  # fmt: skip
    second.close()
    assert all(len(v) == 1 for v in seen.values())  # every entity always got one variant
    share = sum("challenger" in v for v in seen.values()) / len(entities)
    assert abs(share - 0.30) < 3 * math.sqrt(0.3 * 0.7 / len(entities))
    assert headed == {"champion", "challenger"}


@pytest.fixture
def two_views(tmp_path: Path) -> Iterator[dict[str, Any]]:
    proj = fti.connect(home=tmp_path / "home")
    fs = proj.feature_store
    cards = fs.get_or_create_feature_group("cards", primary_key=["cc_num"], online_enabled=True)
    rng = np.random.default_rng(5)
    n = 30
    cards.insert(pd.DataFrame({"cc_num": np.arange(n), "amount_avg": rng.normal(50, 20, n), "n_tx": rng.integers(0, 30, n),
                               "velocity": rng.normal(0, 1, n), "is_fraud": (np.arange(n) % 3 == 0).astype(np.int64)}))  # fmt: skip
    views = {
        1: fs.get_or_create_feature_view("cards_view", 1, query=cards.select(["amount_avg", "n_tx", "is_fraud"]), labels=["is_fraud"]),
        2: fs.get_or_create_feature_view("cards_view", 2, query=cards.select(["amount_avg", "n_tx", "velocity", "is_fraud"]),
                                         labels=["is_fraud"], transformations={"velocity": "standard_scaler"}),
    }  # fmt: skip
    models = {}
    for v, fv in views.items():
        x, _, y, _ = fv.train_test_split(test_size=0.2, seed=1)
        models[v] = LogisticRegression().fit(x.to_numpy(), y.to_numpy().ravel())
        proj.model_registry.register(
            "fraud", models[v], feature_view=fv, training_dataset_version=1, input_example=x.head(3)
        )
    yield {"project": proj, "views": views, "models": models, "n": n}
    proj.close()


def test_each_variant_enriches_with_its_own_feature_view_version(two_views: dict[str, Any]) -> None:
    proj, views, models, n = two_views["project"], two_views["views"], two_views["models"], two_views["n"]
    proj.serving.deploy(
        "fraud", model="fraud:1", enrich=True, variants={"v2": ("fraud:2", 50)}, sticky="cc_num"
    )
    with running_server(create_app(proj, poll_interval_s=0.2)) as url, httpx.Client(base_url=url) as c:
        by_variant: Counter[str] = Counter()
        for key in range(n):
            body = {"inputs": [{"name": "cc_num", "shape": [1], "datatype": "INT64", "data": [key]}]}
            r = c.post("/v2/models/fraud/infer", json=body)
            assert r.status_code == 200, r.text
            data = r.json()
            version = int(data["model_version"])
            assert data["parameters"]["variant"] == {1: "champion", 2: "v2"}[version]
            vector = views[version].get_feature_vectors([{"cc_num": key}], return_type="numpy")
            proba = {o["name"]: o for o in data["outputs"]}["predict_proba"]["data"]
            np.testing.assert_allclose(proba, models[version].predict_proba(vector).ravel(), atol=1e-6)
            by_variant[data["parameters"]["variant"]] += 1
    assert set(by_variant) == {"champion", "v2"}
