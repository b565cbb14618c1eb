"""Fuzzing the HTTP API with hypothesis-generated bodies, paths and versions: never a 5xx, always
a JSON error body; and the malformed requests that once answered 500 (issue 19 item 22)."""

from __future__ import annotations

import json
import struct
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
# versions as a path segment: ints of every size (int32 and int64 overflow), signs, and the
# digits of other scripts: str.isdigit() accepts "\u00b2" (superscript two) and int() does not
path_versions = (
    st.integers(-(2**70), 2**70).map(str)
    | st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=4)
    | st.sampled_from(["0", "1", "01", "+1", " 1", "1e3", "²", str(2**31), str(2**63), str(2**64)])
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
) | path_versions.map(lambda v: f"/v2/models/clf/versions/{v}/infer")
get_paths = path_versions.flatmap(
    lambda v: st.sampled_from([f"/v2/models/clf/versions/{v}", f"/v2/models/clf/versions/{v}/ready"])
)
parameter_versions = path_versions | st.integers() | json_values
repository_bodies = st.fixed_dictionaries(
    {}, optional={"parameters": st.fixed_dictionaries({"version": parameter_versions}) | json_values}
) | st.fixed_dictionaries({"ready": json_values}, optional={"extra": json_values})


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(orjson.loads(response.content)) == {"error"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, body=bodies)
def test_generated_json_bodies_never_cause_a_server_error(client: httpx.Client, path: str, body: Any) -> None:
    _check(client.post(path, content=json.dumps(body), headers={"content-type": "application/json"}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/v2/repository/models/clf/load", "/v2/repository/models/clf/unload"]),
    body=repository_bodies,
)
def test_generated_repository_bodies_never_cause_a_server_error(
    client: httpx.Client, path: str, body: Any
) -> None:
    response = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    _check(response)
    client.post("/v2/repository/models/clf/load", json={})  # an unload is undone for the next example


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=get_paths)
def test_generated_versions_in_paths_never_cause_a_server_error(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    _check(response)
    assert response.status_code in (200, 404, 503), response.text


@st.composite
def extreme_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """Valid-looking requests with extreme values: integers of hundreds of digits, shapes past
    int64, deep nesting inside the data."""
    inputs = []
    for name in FEATURES:
        datatype = draw(st.sampled_from(["FP64", "FP32", "FP16", "INT64", "INT8", "UINT64"]))
        value = draw(
            st.integers(-(10**400), 10**400)
            | st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**309, 1.7e308])
            | st.floats(-1e6, 1e6)
        )
        shape = draw(
            st.sampled_from([[1], [1, 1], [2**63, 0], [0, 2**63], [2**62, 4], [2**64, 0], [2**31, 2**31]])
        )
        depth = draw(st.integers(0, 40))
        data: Any = [value]
        for _ in range(depth):
            data = [data]
        inputs.append({"name": name, "shape": shape, "datatype": datatype, "data": data})
    return {"inputs": inputs}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=extreme_inputs())
def test_extreme_values_and_shapes_never_cause_a_server_error(client: httpx.Client, body: Any) -> None:
    _check(client.post("/v2/models/clf/infer", content=json.dumps(body)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    depth=st.integers(60, 5000), path=paths, where=st.sampled_from(["body", "inputs", "data", "parameters"])
)
def test_deeply_nested_json_never_causes_a_server_error(
    client: httpx.Client, depth: int, path: str, where: str
) -> None:
    nested = b"[" * depth + b"]" * depth
    valid = [
        json.dumps({"name": n, "shape": [1], "datatype": "FP64", "data": [0.5]}).encode() for n in FEATURES
    ]
    if where == "data":
        valid[0] = b'{"name": "f0", "shape": [1], "datatype": "FP64", "data": ' + nested + b"}"
    body = {
        "body": nested,
        "inputs": b'{"inputs": ' + nested + b"}",
        "data": b'{"inputs": [' + b",".join(valid) + b"]}",
        "parameters": b'{"parameters": {"p": ' + nested + b'}, "inputs": [' + b",".join(valid) + b"]}",
    }[where]
    _check(client.post(path, content=body))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, raw=st.binary(max_size=64))
def test_generated_raw_bodies_never_cause_a_server_error(client: httpx.Client, path: str, raw: bytes) -> None:
    _check(client.post(path, content=raw))


@st.composite
def binary_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """Binary tensor extension requests (JSON header + raw tensors), a little off or not at all:
    sizes that do not add up, lengths past the body, junk BYTES elements, NaN/inf, odd shapes."""
    inputs, blobs = [], []
    for name in FEATURES:
        datatype = draw(st.sampled_from(["FP64", "FP64", "FP32", "INT64", "BOOL", "BYTES", "FLOAT"]))
        shape = draw(st.sampled_from([[1], [2], [1, 1], [0], [2**40], [-1]]) | st.lists(st.integers(0, 3)))
        if draw(st.booleans()):
            blob = draw(
                st.binary(max_size=24)
                | st.lists(st.floats(), min_size=1, max_size=2).map(lambda v: struct.pack(f"<{len(v)}d", *v))
            )
            size = draw(st.sampled_from([len(blob), len(blob) + 1, 0, -1, 2**70]) | json_values)
            inputs.append(
                {"name": name, "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": size}}
            )
            blobs.append(blob)
        else:
            inputs.append({"name": name, "shape": [1], "datatype": "FP64", "data": [0.5]})
    header: dict[str, Any] = {"inputs": inputs}
    if draw(st.booleans()):
        header["parameters"] = {"binary_data_output": draw(st.booleans() | json_values)}
    if draw(st.booleans()):
        header["outputs"] = [{"name": "predict", "parameters": {"binary_data": draw(json_values)}}]
    head = json.dumps(header).encode()
    length = draw(st.sampled_from([str(len(head))] * 4 + ["0", "-1", "x", str(len(head) + 10**6)]))
    headers: dict[str, Any] = {"Inference-Header-Content-Length": length}
    if draw(st.booleans()):  # the digits of other scripts, as raw header bytes
        headers = {"Inference-Header-Content-Length": "\u00b2".encode()}
    return head + b"".join(blobs), headers


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, request=binary_requests())
def test_generated_binary_requests_never_cause_a_server_error(
    client: httpx.Client, path: str, request: tuple[bytes, dict[str, Any]]
) -> None:
    body, headers = request
    response = client.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(orjson.loads(response.content)) == {"error"}
    elif response.headers["content-type"] == "application/octet-stream":  # raw outputs after the JSON
        size = int(response.headers["inference-header-content-length"])
        meta = orjson.loads(response.content[:size])
        sizes = [o["parameters"]["binary_data_size"] for o in meta["outputs"] if "data" not in o]
        assert sum(sizes) == len(response.content) - size


VALID = [{"name": n, "shape": [1], "datatype": "FP64", "data": [0.5]} for n in FEATURES]
REGRESSIONS: list[tuple[str, str, bytes, int, str]] = [
    # (case, path, body, status, part of the message); every one of them answered 500 or 200
    ("nested > 1024 levels", "/v2/models/clf/infer", b"[" * 2000 + b"]" * 2000, 400, "nested deeper"),
    (
        "nested inputs",
        "/v2/models/clf/infer",
        b'{"inputs": ' + b"[" * 1500 + b"]" * 1500 + b"}",
        400,
        "nested deeper",
    ),
    ("nested index body", "/v2/repository/index", b"[" * 3000 + b"]" * 3000, 400, "nested deeper"),
    (
        "superscript version on load",
        "/v2/repository/models/clf/load",
        rb'{"parameters": {"version": "\u00b2"}}',
        400,
        "parameters.version must be an integer",
    ),
    (
        "superscript version on unload",
        "/v2/repository/models/clf/unload",
        rb'{"parameters": {"version": "\u00b2"}}',
        400,
        "parameters.version must be an integer",
    ),
    (
        "arabic-indic digit version on load",
        "/v2/repository/models/clf/load",
        '{"parameters": {"version": "\u0661"}}'.encode(),
        400,
        "parameters.version must be an integer",
    ),
    (
        "version beyond int64 in the path",
        f"/v2/models/clf/versions/{2**63}/infer",
        json.dumps({"inputs": VALID}).encode(),
        404,
        "has no version",
    ),
    (
        "version beyond int32 in the path",
        f"/v2/models/clf/versions/{2**31}/infer",
        json.dumps({"inputs": VALID}).encode(),
        404,
        "has no version",
    ),
    (
        "400-digit integer in FP64 data",
        "/v2/models/clf/infer",
        json.dumps({"inputs": [{**VALID[0], "data": [10**400]}, *VALID[1:]]}).encode(),
        400,
        "out of range for FP64",
    ),
    (
        "400-digit integer in FP32 data",
        "/v2/models/clf/infer",
        json.dumps({"inputs": [{**VALID[0], "datatype": "FP32", "data": [10**400]}, *VALID[1:]]}).encode(),
        400,
        "out of range for FP32",
    ),
    (
        "shape [2**63, 0]",
        "/v2/models/clf/infer",
        json.dumps({"inputs": [{**VALID[0], "shape": [2**63, 0], "data": []}, *VALID[1:]]}).encode(),
        400,
        "'shape'",
    ),
    (
        "unknown property of an input",
        "/v2/models/clf/infer",
        json.dumps({"inputs": [{**VALID[0], "dtype": "x"}, *VALID[1:]]}).encode(),
        400,
        "unknown field(s) ['dtype'] in input 'f0'",
    ),
    (
        "unknown property of a requested output",
        "/v2/models/clf/infer",
        json.dumps({"inputs": VALID, "outputs": [{"name": "predict", "binary": True}]}).encode(),
        400,
        "unknown field(s) ['binary'] in outputs[0]",
    ),
    (
        "unknown property of an index request",
        "/v2/repository/index",
        b'{"ready": true, "all": 1}',
        400,
        "unknown field(s) ['all']",
    ),
    (
        "unknown property of a load request",
        "/v2/repository/models/clf/load",
        b'{"version": 1}',
        400,
        "unknown field(s) ['version']",
    ),
]


@pytest.mark.parametrize(
    ("case", "path", "body", "status", "message"), REGRESSIONS, ids=[c[0] for c in REGRESSIONS]
)
def test_malformed_requests_that_once_answered_500_or_200_get_a_4xx(
    client: httpx.Client, case: str, path: str, body: bytes, status: int, message: str
) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert message in response.json()["error"]


def test_405_names_the_allowed_methods(client: httpx.Client) -> None:
    for method, path, allowed in (
        ("GET", "/v2/models/clf/infer", "POST"),
        ("DELETE", "/v2/health/ready", "GET, HEAD"),
        ("PUT", "/v2/repository/index", "POST"),
    ):
        response = client.request(method, path)
        assert response.status_code == 405
        assert response.headers["allow"] == allowed
        assert response.json() == {"error": f"{method} is not allowed on {path}; use {allowed}"}


def test_a_valid_request_still_works_after_fuzzing(base_url: str) -> None:
    body = {"inputs": [{"name": n, "shape": [2], "datatype": "FP64", "data": [0.5, -0.5]} for n in FEATURES]}
    response = httpx.post(f"{base_url}/v2/models/clf/infer", json=body)
    assert response.status_code == 200
    assert np.asarray(response.json()["outputs"][0]["data"]).shape == (2,)
