"""The server's limits against too many, too slow or too big clients (issue 19 items 15 and 17).

A real uvicorn server on loopback with the model server's own HTTP protocol (header timeout,
connection cap); the slow clients are raw sockets that send part of a request and stall.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
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
from fti.serving.limits import ServerLimits
from fti.testing.serving import running_server

FEATURES = ["a", "b", "c"]
BODY = {
    "inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [0.5]} for n in FEATURES],
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fti.Project]:
    proj = fti.connect(home=tmp_path_factory.mktemp("limits") / "home")
    X, y = make_classification(200, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    proj.model_registry.register(
        "clf", LogisticRegression().fit(X, y), input_example=pd.DataFrame(X[:5], columns=FEATURES)
    )
    proj.serving.deploy("clf", model="clf", log_requests=False)
    yield proj
    proj.close()


def _serve(project: fti.Project, **limits: Any) -> Any:
    return running_server(create_app(project, limits=ServerLimits(**limits)))


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _partial_upload(url: str, declared: int, sent: bytes = b'{"inputs": [') -> socket.socket:
    """A client that declares a body of ``declared`` bytes, sends its first bytes and stalls."""
    sock = _connect(url)
    sock.sendall(
        b"POST /v2/models/clf/infer HTTP/1.1\r\nHost: fti\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (declared, sent)
    )
    return sock


def _response(sock: socket.socket, wait_s: float) -> tuple[bytes, bool]:
    """What the server sent within ``wait_s`` seconds, and whether it closed the connection."""
    sock.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = [
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        ]
        if length and len(rest) >= length[0] and b"connection: close" not in head.lower():
            return data, False  # a complete response on a connection that stays open
    return data, False


def test_requests_beyond_the_in_flight_cap_are_shed_before_their_body_is_read(project: fti.Project) -> None:
    """Item 15: with two uploads in flight and ``max_inflight=2``, a third request is answered
    503 with Retry-After at once, although its body has not arrived; freed slots serve again."""
    with _serve(project, max_inflight=2) as url, httpx.Client(base_url=url, timeout=10) as c:
        slow = [_partial_upload(url, 5000) for _ in range(2)]
        try:
            time.sleep(0.3)  # both are in flight, waiting for their bodies
            third = _partial_upload(url, 5000, sent=b"")  # headers only: the body never comes
            started = time.monotonic()
            data, _ = _response(third, 3)
            assert data.startswith(b"HTTP/1.1 503"), data
            assert time.monotonic() - started < 3
            assert b"retry-after: 1" in data.lower() and b"inference requests in flight" in data
            third.close()
            shed = c.post("/v2/models/clf/infer", json=BODY)
            assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
            v1 = c.post("/v1/models/clf:predict", json={"instances": [[0.5, 0.5, 0.5]]})
            assert v1.status_code == 503 and v1.headers["retry-after"] == "1"  # the V1 route too
            assert c.get("/v2/health/ready").status_code == 200  # health is never shed
            metrics = c.get("/metrics").text
            assert "fti_inflight_requests 2.0" in metrics and "fti_requests_shed_total 3.0" in metrics
        finally:
            for sock in slow:
                sock.close()
        deadline = time.monotonic() + 5
        while (response := c.post("/v2/models/clf/infer", json=BODY)).status_code == 503:
            assert time.monotonic() < deadline, "the closed uploads never freed their slots"
            time.sleep(0.05)
        assert response.status_code == 200


def test_slow_or_missing_headers_get_408_and_the_connection_closed(project: fti.Project) -> None:
    """Item 17: headers must arrive within ``header_timeout_s``, on a new connection and after a
    response on a kept-alive one."""
    with _serve(project, header_timeout_s=0.5) as url:
        dripping = _connect(url)
        dripping.sendall(b"POST /v2/models/clf/infer HTTP/1.1\r\nHost: fti\r\n")  # and no more
        silent = _connect(url)  # sends nothing at all
        for sock in (dripping, silent):
            data, closed = _response(sock, 3)
            assert data.startswith(b"HTTP/1.1 408") and closed, data
            sock.close()
        kept = _connect(url)
        kept.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: fti\r\n\r\n")
        first, _ = _response(kept, 0.3)
        assert first.startswith(b"HTTP/1.1 200")
        kept.sendall(b"GET /v2/health/live HTTP/1.1\r\n")  # the next request's headers stall
        data, closed = _response(kept, 3)
        assert data.startswith(b"HTTP/1.1 408") and closed, data
        kept.close()


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closed(project: fti.Project) -> None:
    """Item 17: a client that sends part of its body and stalls is cut after ``body_timeout_s``."""
    with _serve(project, body_timeout_s=0.5, header_timeout_s=30) as url:
        slow = _partial_upload(url, 1000)
        data, closed = _response(slow, 4)
        slow.close()
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"did not arrive within 0.5 s" in data
    assert closed


def test_connections_beyond_the_cap_are_answered_503_and_closed(project: fti.Project) -> None:
    """Item 17: ``max_connections`` open connections; the next one is refused at once."""
    with _serve(project, max_connections=4, header_timeout_s=30) as url:
        idle = [_connect(url) for _ in range(4)]
        try:
            time.sleep(0.2)
            extra = _connect(url)
            data, closed = _response(extra, 3)
            extra.close()
            assert data.startswith(b"HTTP/1.1 503") and closed, data
            assert b"too many open connections" in data
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        assert httpx.post(f"{url}/v2/models/clf/infer", json=BODY).status_code == 200


def test_the_bytes_of_bodies_held_at_once_are_capped(project: fti.Project) -> None:
    """Item 17: bodies being read count against ``max_buffered_bytes`` from their declared
    size: a request that would exceed it gets 503 before a byte of it is read."""
    limits = {"max_buffered_bytes": 300_000, "max_body_bytes": 200_000, "header_timeout_s": 30}
    with _serve(project, **limits) as url, httpx.Client(base_url=url, timeout=10) as c:
        first = _partial_upload(url, 150_000)
        try:
            time.sleep(0.2)
            second = _partial_upload(url, 180_000)
            data, _ = _response(second, 3)
            second.close()
            assert data.startswith(b"HTTP/1.1 503"), data
            assert b"bytes of request bodies already" in data
            assert c.post("/v2/models/clf/infer", json=BODY).status_code == 200  # small ones fit
        finally:
            first.close()
        big = {"inputs": [{**BODY["inputs"][0], "shape": [8000], "data": [0.5] * 8000}, *BODY["inputs"][1:]]}
        time.sleep(0.2)
        response = c.post("/v2/models/clf/infer", json=big)  # the budget was given back
        assert response.status_code == 400 and "different row counts" in response.json()["error"]


def test_limits_are_validated() -> None:
    with pytest.raises(fti.ValidationError, match="max_inflight must be a positive number"):
        ServerLimits(max_inflight=0)


def test_memory_stays_bounded_by_the_limits(project: fti.Project, tmp_path: Path) -> None:
    """Item 17: many concurrent near-limit bodies cannot all be held: beyond the buffered-bytes
    budget they are refused, so the server's memory is bounded by the limits, not the clients."""
    body_bytes = 100_000
    limits = {"max_buffered_bytes": 5 * body_bytes, "max_body_bytes": body_bytes, "header_timeout_s": 30}
    with _serve(project, **limits) as url:
        uploads = [_partial_upload(url, body_bytes - 100) for _ in range(20)]
        try:
            time.sleep(0.5)
            answers = [_response(sock, 0.3)[0] for sock in uploads]
        finally:
            for sock in uploads:
                sock.close()
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    assert len(refused) == 15  # exactly the budget's five are being read
    assert np.all([b"bytes of request bodies already" in a for a in refused])
