"""Fuzzing the HTTP API with hypothesis-generated bodies: never a 5xx, always a JSON error body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import create_app
from fti.serving.protocol import DATATYPES
from fti.testing.serving import running_server

FEATURES = ["f0", "f1", "f2"]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proj = fti.connect(home=tmp_path_factory.mktemp("fuzz") / "home")
    X, y = make_classification(200, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    model = LogisticRegression().fit(X, y)
    proj.model_registry.register("clf", model, input_example=pd.DataFrame(X[:5], columns=FEATURES))
    proj.serving.deploy("clf", model="clf", log_requests=False)
    with running_server(create_app(proj, max_body_bytes=16 * 1024)) as url:
        yield url
    proj.close()


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=20) as c:
        yield c


# model-sized numbers: numeric overflow inside the model is not input validation
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(-1e6, 1e6, allow_nan=False)
    | st.text(max_size=4)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from([*FEATURES, "zz", ""]) | json_values,
        "shape": st.lists(st.integers(-2, 4), max_size=3) | json_values,
        "datatype": st.sampled_from([*DATATYPES, "FLOAT"]) | json_values,
        "data": st.lists(scalars | st.lists(scalars, max_size=3), max_size=6) | json_values,
    },
    optional={"parameters": json_values},
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """All the model's inputs, each a little off in one way or another (or not at all)."""
    n = draw(st.integers(1, 3))
    inputs = []
    for name in draw(st.permutations(FEATURES)):
        size = draw(st.sampled_from([n, n, n, n + 1]))
        data = draw(
            st.lists(st.floats(-1e6, 1e6) | st.integers(-5, 5) | scalars, min_size=size, max_size=size)
        )
        shape = draw(st.sampled_from([[n], [n, 1], [1, n], [size]]))
        datatype = draw(st.sampled_from(["FP64", "FP64", "INT64", "FP32", "BYTES", "BOOL"]))
        inputs.append({"name": name, "shape": shape, "datatype": datatype, "data": data})
    return {"inputs": inputs, **draw(st.fixed_dictionaries({}, optional={"id": st.text(max_size=3)}))}


bodies = st.one_of(
    near_valid(),
    json_values,
    st.fixed_dictionaries(
        {"inputs": st.lists(tensor, max_size=4) | json_values},
        optional={"id": json_values, "outputs": json_values, "parameters": json_values},
    ),
)
paths = st.sampled_from(
    [
        "/v2/models/clf/infer",
        "/v2/models/clf/versions/1/infer",
        "/v2/models/clf/versions/0/infer",
        "/v2/models/other/infer",
        "/v2/repository/index",
        "/v2/repository/models/clf/load",
    ]
)


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(orjson.loads(response.content)) == {"error"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, body=bodies)
def test_generated_json_bodies_never_cause_a_server_error(client: httpx.Client, path: str, body: Any) -> None:
    _check(client.post(path, content=json.dumps(body), headers={"content-type": "application/json"}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, raw=st.binary(max_size=64))
def test_generated_raw_bodies_never_cause_a_server_error(client: httpx.Client, path: str, raw: bytes) -> None:
    _check(client.post(path, content=raw))


def test_a_valid_request_still_works_after_fuzzing(base_url: str) -> None:
    body = {"inputs": [{"name": n, "shape": [2], "datatype": "FP64", "data": [0.5, -0.5]} for n in FEATURES]}
    response = httpx.post(f"{base_url}/v2/models/clf/infer", json=body)
    assert response.status_code == 200
    assert np.asarray(response.json()["outputs"][0]["data"]).shape == (2,)
