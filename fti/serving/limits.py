"""The limits that keep a model server serving when clients are too many, too slow or hostile.

Per worker process (``fti serve --workers N`` multiplies them):

* **in-flight cap** (``max_inflight``): an inference request beyond it is answered 503 with
  ``Retry-After`` as soon as its headers are parsed, before its body is read (by the HTTP
  protocol, :mod:`fti.serving.connections`, or :class:`ShedMiddleware`), so an overload costs
  the server a few microseconds per refused request instead of parsing work thrown away later;
* **buffered body bytes** (``max_buffered_bytes``): request bodies being read or processed at
  once, all requests together (a request declares its size with ``Content-Length``; 503 beyond);
* **body read timeout** (``body_timeout_s``): a body that has not fully arrived in time gets 408
  and the connection is closed;
* **header read timeout** and **connection cap** (``header_timeout_s``, ``max_connections``):
  enforced by the HTTP protocol of the server itself (:mod:`fti.serving.connections`).

The queue of each model (``max_queue_size``, 503) and its request timeout (``timeout_ms``, 504)
are deployment settings (:mod:`fti.serving.batching`).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import ClientDisconnect

from fti.errors import FtiError, ValidationError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

RESERVED = "fti.reserved_bytes"
"""ASGI scope key: the body bytes a request holds in the buffered-bytes budget."""


@dataclass(frozen=True)
class ServerLimits:
    """The limits of one server worker (see the module docstring)."""

    max_body_bytes: int = 8 * 1024 * 1024
    """A larger request body gets 413."""
    max_inflight: int = 64
    """Inference requests handled at once; more are answered 503 before their body is read.
    Twice the default ``max_batch_size``: one batch predicting while the next one fills. More
    concurrency only adds queueing (measured: goodput fell past ~32 connections on 2 cores)."""
    max_buffered_bytes: int = 256 * 1024 * 1024
    """Request body bytes held at once by all requests; a request that would exceed it gets 503."""
    body_timeout_s: float = 30.0
    """Longest a request body may take to arrive (408, connection closed)."""
    header_timeout_s: float = 10.0
    """Longest a request's headers may take to arrive on a connection (408, connection closed)."""
    max_connections: int = 2048
    """Open connections; more are answered 503 and closed at once."""
    keep_alive_s: float = 5.0
    """An idle keep-alive connection is closed after this long."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValidationError(f"server limit {name} must be a positive number, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OverloadedError(FtiError):
    """The server sheds this request: retry after ``retry_after`` seconds."""

    code = "overloaded"
    http_status = 503
    retry_after = 1


class PayloadTooLargeError(ValidationError):
    """The request body is larger than the server accepts."""

    code = "payload_too_large"
    http_status = 413


class RequestTimeoutError(FtiError):
    """The request body did not arrive in time (the connection is closed)."""

    code = "request_timeout"
    http_status = 408


class ClientClosedError(FtiError):
    """The client closed its connection before its request body arrived: nobody is left to
    answer, and it is not a fault of the server (counted and logged as 499, as nginx does)."""

    code = "client_closed_request"
    http_status = 499


class Admission:
    """Counts the inference requests in flight and the body bytes held by one worker."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.inflight = 0
        self.buffered = 0
        self.shed = 0  # requests refused by the in-flight cap

    async def read_body(self, request: Request) -> bytes:
        """The request body, within the size, buffered-bytes and time limits.

        The bytes stay counted in the budget until the request has its response (released by
        :class:`ShedMiddleware`).

        Raises:
            PayloadTooLargeError: the body is larger than ``max_body_bytes`` (413).
            OverloadedError: the worker holds ``max_buffered_bytes`` already (503).
            RequestTimeoutError: the body did not arrive within ``body_timeout_s`` (408).
            ValidationError: a compressed body that is not valid data of its encoding (400), or
                an unsupported ``Content-Encoding`` (415); see :mod:`fti.serving.encoding`.
        """
        from fti.serving.encoding import decoder

        limit = self.limits.max_body_bytes
        decode = decoder(request.headers.get("content-encoding"), limit)  # the limit holds decoded too
        declared = request.headers.get("content-length")
        size = 0
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise ValidationError(f"invalid Content-Length header {declared!r}") from None
            if size > limit:
                raise PayloadTooLargeError(f"request body of {size} bytes exceeds the limit of {limit} bytes")
        self._reserve(request.scope, size)  # before reading a byte of it
        chunks: list[bytes] = []
        total = kept = 0
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > limit:
                        raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
                    if decode is not None:
                        chunk = decode.feed(chunk)
                    kept += len(chunk)
                    if kept > size:  # more than declared (chunked, or decompressed): reserve as it comes
                        self._reserve(request.scope, kept - size)
                        size = kept
                    chunks.append(chunk)
                if decode is not None:
                    decode.finish()
        except ClientDisconnect:
            raise ClientClosedError(
                f"the client closed the connection after {total} bytes of its request body"
            ) from None
        except TimeoutError:
            raise RequestTimeoutError(
                f"the request body did not arrive within {self.limits.body_timeout_s:g} s; "
                "send it faster or in a smaller request"
            ) from None
        return b"".join(chunks)

    def _reserve(self, scope: Scope, size: int) -> None:
        if size and self.buffered + size > self.limits.max_buffered_bytes:
            raise OverloadedError(
                f"the server holds {self.buffered} bytes of request bodies already (limit "
                f"{self.limits.max_buffered_bytes}); retry shortly"
            )
        self.buffered += size
        scope[RESERVED] = scope.get(RESERVED, 0) + size


def overloaded_message(limits: ServerLimits) -> str:
    """The error message a shed request gets."""
    return f"the server is overloaded ({limits.max_inflight} inference requests in flight); retry shortly"


def overloaded_body(limits: ServerLimits) -> bytes:
    """The JSON body of the 503 a shed request gets."""
    return orjson.dumps({"error": overloaded_message(limits)})


def find_admission(app: Any) -> Admission | None:
    """The :class:`Admission` of a model server app, looked up through the middleware uvicorn
    wraps around it (``.app`` attributes), or None for any other app."""
    for _ in range(8):
        state = getattr(getattr(app, "state", None), "fti", None)
        admission = getattr(state, "admission", None)
        if isinstance(admission, Admission):
            return admission
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class ShedMiddleware:
    """ASGI middleware: refuses inference requests beyond the in-flight cap before anything
    reads their body, and releases every request's body bytes when it is answered.

    Under ``fti serve`` the HTTP protocol sheds first, without even starting an ASGI task
    (:mod:`fti.serving.connections`); this is the same rule for any other ASGI server.
    """

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission
        retry = str(OverloadedError.retry_after).encode()
        body = overloaded_body(admission.limits)
        self._start = {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", retry),
            ],
        }
        self._body = {"type": "http.response.body", "body": body}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        admission = self.admission
        counted = scope["method"] == "POST" and scope["path"].endswith(("/infer", ":predict"))
        if counted:
            if admission.inflight >= admission.limits.max_inflight:
                admission.shed += 1
                await send(self._start)
                await send(self._body)
                return
            admission.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            if counted:
                admission.inflight -= 1
            admission.buffered -= scope.get(RESERVED, 0)
