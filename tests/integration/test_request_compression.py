"""Compressed HTTP on a real server: tritonclient.http unmodified with request and response
compression (JSON and binary tensors), gzip/deflate request bodies on the V2 and V1 routes with
the body limit applied to the decompressed size (a zip bomb is a 413, and the server stays
up), bad compressed bodies a 400 with a JSON error, and responses gzipped only when accepted
and large enough."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.serving.app import GZIP_MIN_BYTES, create_app
from fti.serving.limits import ServerLimits
from fti.testing.serving import running_server

FEATURES = ["f0", "f1", "f2", "f3"]
LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proj = fti.connect(home=tmp_path_factory.mktemp("compression") / "home")
    X, y = make_classification(600, n_features=4, random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    model = LogisticRegression().fit(X, y)
    proj.model_registry.register("clf", model, input_example=frame.head(5))
    proj.serving.deploy("clf", model="clf", log_requests=False)
    app = create_app(proj, poll_interval_s=0.2, limits=ServerLimits(max_body_bytes=LIMIT))
    with running_server(app) as url:
        yield {"url": url, "model": model, "X": X}
    proj.close()


def _body(rows: np.ndarray) -> bytes:
    inputs = [
        {"name": n, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, j].tolist()}
        for j, n in enumerate(FEATURES)
    ]
    return orjson.dumps({"inputs": inputs})


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_http_with_request_and_response_compression(
    served: dict[str, Any], algorithm: str, binary: bool
) -> None:
    import tritonclient.http as triton

    rows = served["X"][:300]
    client = triton.InferenceServerClient(url=served["url"].removeprefix("http://"))
    try:
        inputs = []
        for j, name in enumerate(FEATURES):
            tensor = triton.InferInput(name, [len(rows)], "FP64")
            tensor.set_data_from_numpy(rows[:, j].copy(), binary_data=binary)
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("predict", "predict_proba")]
        result = client.infer(
            "clf",
            inputs,
            outputs=outputs,
            request_compression_algorithm=algorithm,
            response_compression_algorithm=algorithm,
        )
    finally:
        client.close()
    np.testing.assert_array_equal(result.as_numpy("predict"), served["model"].predict(rows))
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), served["model"].predict_proba(rows), atol=1e-6
    )


def test_compressed_bodies_on_the_v2_and_v1_routes(served: dict[str, Any]) -> None:
    rows = served["X"][:50]
    expected = served["model"].predict(rows).tolist()
    plain = _body(rows)
    v1 = orjson.dumps({"instances": rows.tolist()})
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    with httpx.Client(base_url=served["url"], timeout=30) as http:
        for encoding, data in (
            ("gzip", gzip.compress(plain)),
            ("deflate", zlib.compress(plain)),
            ("deflate", raw.compress(plain) + raw.flush()),  # raw deflate, as some clients send it
        ):
            r = http.post("/v2/models/clf/infer", content=data, headers={"Content-Encoding": encoding})
            assert r.status_code == 200, r.text
            assert next(o for o in r.json()["outputs"] if o["name"] == "predict")["data"] == expected
        r = http.post(
            "/v1/models/clf:predict", content=gzip.compress(v1), headers={"Content-Encoding": "gzip"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == expected


def test_the_body_limit_holds_for_the_decompressed_size(served: dict[str, Any]) -> None:
    rows = served["X"][:2]
    body = _body(rows)
    fits = body + b" " * (LIMIT - len(body))  # JSON padded with spaces to exactly the limit
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024), compresslevel=9)  # 64 MB in ~64 KB
    assert len(bomb) < LIMIT
    with httpx.Client(base_url=served["url"], timeout=30) as http:
        gz = {"Content-Encoding": "gzip"}
        assert http.post("/v2/models/clf/infer", content=gzip.compress(fits), headers=gz).status_code == 200
        over = http.post("/v2/models/clf/infer", content=gzip.compress(fits + b" "), headers=gz)
        assert over.status_code == 413 and "decompresses to more than the limit" in over.json()["error"]
        r = http.post("/v2/models/clf/infer", content=bomb, headers=gz)
        assert r.status_code == 413 and f"limit of {LIMIT} bytes" in r.json()["error"]
        # the server is unharmed and serves the next request
        assert http.post("/v2/models/clf/infer", content=body).status_code == 200


def test_bad_compressed_bodies_are_a_400_with_a_json_error(served: dict[str, Any]) -> None:
    body = _body(served["X"][:5])
    with httpx.Client(base_url=served["url"], timeout=30) as http:
        cases = [
            ("gzip", b"not gzip at all", 400, "not valid gzip data"),
            ("gzip", gzip.compress(body)[:-10], 400, "ends in the middle of its gzip stream"),
            ("deflate", zlib.compress(body) + b"trailing", 400, "after the end of its deflate stream"),
            ("br", body, 415, "'br' is not supported"),
        ]
        for encoding, data, status, message in cases:
            r = http.post("/v2/models/clf/infer", content=data, headers={"Content-Encoding": encoding})
            assert r.status_code == status, (encoding, r.text)
            assert r.headers["content-type"] == "application/json" and message in r.json()["error"]


def test_responses_are_gzipped_when_accepted_and_large_enough(served: dict[str, Any]) -> None:
    small, large = _body(served["X"][:1]), _body(served["X"][:300])
    with httpx.Client(base_url=served["url"], timeout=30) as http:
        zipped = http.post("/v2/models/clf/infer", content=large, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert int(zipped.headers["content-length"]) < len(zipped.content)  # compressed on the wire
        one = http.post("/v2/models/clf/infer", content=small, headers={"Accept-Encoding": "gzip"})
        assert len(one.content) < GZIP_MIN_BYTES and "content-encoding" not in one.headers
        unasked = http.post("/v2/models/clf/infer", content=large, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in unasked.headers
    assert zipped.json()["outputs"] == unasked.json()["outputs"]
