"""The enriched request path (issue 21): checks and log columns planned once per loaded model, and
lookups in an in-process online store done on the event loop instead of a worker thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving import dataplane, infer
from fti.serving.protocol import parse_infer_request
from fti.serving.repository import load_model
from fti.testing.servers import RedisServer


def _deploy(project: fti.Project) -> Any:
    fs = project.feature_store
    rng = np.random.default_rng(0)
    n = 40
    cards = fs.get_or_create_feature_group("cards", primary_key=["cc_num"], online_enabled=True)
    cards.insert(
        pd.DataFrame({"cc_num": np.arange(n), "amount": rng.normal(50, 20, n), "is_fraud": np.arange(n) % 2})
    )
    history = fs.get_or_create_feature_group("history", primary_key=["cc_num"], online_enabled=True)
    history.insert(pd.DataFrame({"cc_num": np.arange(n), "n_tx": rng.integers(0, 30, n)}))
    fv = fs.get_or_create_feature_view(
        "cards_view",
        query=cards.select(["amount", "is_fraud"]).join(history.select(["n_tx"]), on=["cc_num"]),
        labels=["is_fraud"],
        transformations={"amount": "standard_scaler"},
    )
    x, y = fv.get_training_data(fv.create_training_data()[0])
    model = LogisticRegression().fit(x.to_numpy(), np.ravel(y))
    project.model_registry.register("fraud", model, feature_view=fv, training_dataset_version=1)
    spec = project.serving.deploy("fraud", model="fraud", enrich=True).spec
    return load_model(project, spec)


def _request(*keys: int) -> Any:
    return parse_infer_request(
        {"inputs": [{"name": "cc_num", "shape": [len(keys)], "datatype": "INT64", "data": list(keys)}]}
    )


def test_a_planned_request_equals_the_unplanned_one_and_runs_on_the_loop(tmp_path: Path) -> None:
    with fti.connect(home=tmp_path / "home") as project:
        loaded = _deploy(project)
        request = _request(3, 7)
        unplanned = dataplane.prepare_enriched(
            request, loaded.feature_view, loaded.signature, allow_missing=False
        )
        planned = loaded.prepare(request)
        np.testing.assert_array_equal(planned.matrix, unplanned.matrix)
        assert planned.logged == unplanned.logged
        expected = (
            project.feature_store.get_feature_view("cards_view")
            .serving(1)
            .get_feature_vectors([{"cc_num": 3}, {"cc_num": 7}], return_type="numpy")
        )
        np.testing.assert_allclose(planned.matrix, expected)
        # SQLite reads in process: the lookup runs on the event loop's thread, not a worker's
        assert loaded.prepare_inline
        threads: list[int] = []
        lookup = loaded.feature_view.lookup

        def recording(*args: Any, **kwargs: Any) -> Any:
            threads.append(threading.get_ident())
            return lookup(*args, **kwargs)

        loaded.feature_view.lookup = recording

        async def on_the_loop() -> int:
            await infer.prepare(loaded, request)
            return threading.get_ident()

        assert threads == [] and asyncio.run(on_the_loop()) == threads[0]


@pytest.mark.redis
def test_a_networked_online_store_is_read_in_a_worker_thread(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with fti.connect(home=tmp_path / "home", online_url=redis_server.url(9)) as project:
        loaded = _deploy(project)
        assert not loaded.prepare_inline
        assert loaded.prepare(_request(1)).matrix.shape == (1, 2)
        # the event loop must not wait on the network: no fast lane, the careful path in a thread
        payload = {"inputs": [{"name": "cc_num", "shape": [1], "datatype": "INT64", "data": [1]}]}
        assert loaded.fast_prepare(payload) is None


def _payload(**overrides: Any) -> dict[str, Any]:
    key = {"name": "cc_num", "shape": [3], "datatype": "INT64", "data": [3, 7, 3]}
    return {"id": "r1", "inputs": [key], **overrides}


def test_the_fast_lane_of_an_enriched_request_equals_the_careful_path(tmp_path: Path) -> None:
    with fti.connect(home=tmp_path / "home") as project:
        loaded = _deploy(project)
        for payload in (
            _payload(),
            {"inputs": [{"name": "cc_num", "shape": [1, 1], "datatype": "INT64", "data": [5]}]},
        ):
            fast = loaded.fast_prepare(payload)
            careful = loaded.prepare(parse_infer_request(payload))
            assert fast is not None and fast.n == careful.n
            np.testing.assert_array_equal(fast.matrix, careful.matrix)
            assert fast.logged == careful.logged
        # a key without online features fails as on the careful path
        missing = _payload()
        missing["inputs"][0]["data"] = [3, 999, 7]
        with pytest.raises(fti.NotFoundError, match="999"):
            loaded.fast_prepare(missing)


@pytest.fixture(scope="module")
def enriched(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with fti.connect(home=tmp_path_factory.mktemp("enriched") / "home") as project:
        yield _deploy(project)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["inputs"][0].update(data=[3, None, 7]),
        lambda p: p["inputs"][0].update(data=[3, True, 7]),
        lambda p: p["inputs"][0].update(data=[3, 2**63, 7]),
        lambda p: p["inputs"][0].update(data=[3.0, 7.0, 1.0], datatype="FP64"),
        lambda p: p["inputs"][0].update(datatype="INT32"),
        lambda p: p["inputs"][0].update(datatype="BYTES"),
        lambda p: p["inputs"][0].update(shape=[4]),
        lambda p: p["inputs"][0].update(data=[]),
        lambda p: p["inputs"][0].update(data=[[3], [7], [3]]),
        lambda p: p["inputs"][0].update(name="card"),
        lambda p: p["inputs"].append({"name": "amount", "shape": [3], "datatype": "FP64", "data": [1.0] * 3}),
        lambda p: p["inputs"].append(dict(p["inputs"][0])),
        lambda p: p.update(parameters={"binary_data_output": True}),
        lambda p: p.update(outputs=[{"name": "predict"}]),
        lambda p: p.update(id=5),
        lambda p: p["inputs"][0].update(parameters={}),
    ],
)
def test_anything_unusual_in_an_enriched_request_takes_the_careful_path(enriched: Any, change: Any) -> None:
    payload = _payload()
    change(payload)
    assert enriched.fast_prepare(payload) is None
    assert enriched.fast_prepare(_payload()) is not None  # the unchanged request takes the fast lane
