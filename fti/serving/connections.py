"""Connection limits of the model server, enforced in uvicorn's HTTP protocol.

uvicorn closes idle keep-alive connections but waits forever for the headers of a request, and
accepts every connection: a thousand slow clients hold a thousand open files. The protocols here
add to uvicorn's own (httptools, or h11 when httptools is not installed):

* a **header read timeout**: a request's headers must arrive within ``header_timeout_s`` of the
  connection opening or of the previous response; otherwise the server answers 408 and closes;
* a **connection cap**: beyond ``max_connections`` open connections a new one is answered 503
  (with ``Retry-After``) and closed at once, before anything is parsed;
* **load shedding at the parser** (httptools): an inference request that finds the worker's
  in-flight cap reached (:class:`~fti.serving.limits.Admission`) is answered 503 right when its
  headers are parsed, without an ASGI task, routing or reading its body; the connection is then
  not read again for ``Retry-After`` (1 s). A refused request costs a few microseconds and a
  client retrying at once costs nothing until it may, so a worker flooded far beyond its
  capacity keeps serving at its capacity.

The limits come from :class:`~fti.serving.limits.ServerLimits`: ``fti serve`` passes them to its
worker processes in the environment (uvicorn imports these classes by name in each worker);
:func:`protocol_class` builds a class with given limits for a server run in-process.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, ClassVar, cast

from uvicorn.protocols.http.h11_impl import H11Protocol as _H11
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpTools

from fti.serving.limits import Admission, OverloadedError, ServerLimits, find_admission, overloaded_body

OPTIONS_ENV = "FTI_SERVE_OPTIONS"
"""The environment variable ``fti serve`` passes its options (including the limits) in."""


def _response(status: str, message: str, extra: str = "") -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{extra}connection: close\r\n\r\n"
    )
    return head.encode() + body


_REFUSED = _response(
    "503 Service Unavailable", "too many open connections; retry shortly", "retry-after: 1\r\n"
)
_TIMED_OUT = _response("408 Request Timeout", "the request headers did not arrive in time")

_from_env: tuple[str | None, ServerLimits] | None = None


def limits_from_environment() -> ServerLimits:
    """The limits ``fti serve`` put in the environment (the defaults when there are none)."""
    global _from_env
    raw = os.environ.get(OPTIONS_ENV)
    if _from_env is None or _from_env[0] != raw:
        options = json.loads(raw) if raw else {}
        _from_env = (raw, ServerLimits(**options.get("limits", {})))
    return _from_env[1]


class _Limited:
    """The header timeout and connection cap, mixed into a uvicorn HTTP protocol."""

    limits: ClassVar[ServerLimits | None] = None  # None: from the environment (fti serve)

    # provided by the uvicorn protocol this is mixed into
    connections: set[Any]
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        limits = self.limits or limits_from_environment()
        self._header_timeout = limits.header_timeout_s
        self._timer: asyncio.TimerHandle | None = None
        self._refused = len(self.connections) >= limits.max_connections
        if self._refused:  # answered without parsing anything, and closed
            writer = cast(asyncio.WriteTransport, transport)  # uvloop's transports too
            writer.write(_REFUSED)
            writer.close()
            return
        super().connection_made(transport)  # type: ignore[misc]
        self._seen_cycle: Any = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not None and self.cycle is not self._seen_cycle:  # a request's headers are in
            self._seen_cycle = self.cycle
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm()  # the next request's headers are due within the timeout

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        self._disarm()
        self._timer = self.loop.call_later(self._header_timeout, self._headers_timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_timed_out(self) -> None:
        self._timer = None
        waiting = self.cycle is None or self.cycle.response_complete  # not while a request runs
        if waiting and not self.transport.is_closing():
            self.transport.write(_TIMED_OUT)
            self.transport.close()


class _NoEvent:
    def set(self) -> None:
        pass


class _ShedCycle:
    """Stands for a request answered by the protocol itself: its body is discarded."""

    response_complete = True
    message_event = _NoEvent()  # what uvicorn signals when the connection is lost


_SHED_CYCLE = _ShedCycle()
_INFER = (b"/infer", b":predict")  # the V2 and V1 inference routes


class HttpToolsProtocol(_Limited, _HttpTools):
    """uvicorn's httptools protocol with the header timeout, the connection cap and load
    shedding at the parser."""

    _shed_response: ClassVar[dict[int, bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._admission: Admission | None = None if self._refused else find_admission(self.app)

    def on_headers_complete(self) -> None:
        admission = self._admission
        if (
            admission is not None
            and admission.inflight >= admission.limits.max_inflight
            and (self.cycle is None or self.cycle.response_complete)  # nothing pipelined before it
            and self.parser.get_method() == b"POST"
            and self.url.partition(b"?")[0].endswith(_INFER)
        ):
            admission.shed += 1
            self.cycle = _SHED_CYCLE  # the parser's body callbacks see an answered request
            self._seen_cycle = _SHED_CYCLE
            self.transport.write(self._shed_bytes(admission))
            if not self.parser.should_keep_alive():
                self.transport.close()
                return
            self._arm()
            # Retry-After, enforced: this connection is not read again before then, so a client
            # that retries at once costs nothing until it may (its request waits in the socket)
            self.flow.pause_reading()
            self.loop.call_later(OverloadedError.retry_after, self._resume_after_shed)
            return
        super().on_headers_complete()

    def _resume_after_shed(self) -> None:
        if not self.transport.is_closing() and self.cycle is _SHED_CYCLE:
            self.flow.resume_reading()

    @classmethod
    def _shed_bytes(cls, admission: Admission) -> bytes:
        key = id(admission.limits)
        response = cls._shed_response.get(key)
        if response is None:
            body = overloaded_body(admission.limits)
            response = cls._shed_response[key] = (
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nretry-after: 1\r\n\r\n%s" % (len(body), body)
            )
        return response


class H11Protocol(_Limited, _H11):
    """uvicorn's h11 protocol with the header timeout and connection cap."""


def protocol_class(limits: ServerLimits, *, httptools: bool = True) -> type[asyncio.Protocol]:
    """A protocol class enforcing ``limits`` (for a server run in this process)."""
    base = HttpToolsProtocol if httptools else H11Protocol
    return type(base.__name__, (base,), {"limits": limits})


def protocol_path(*, httptools: bool = True) -> str:
    """The import path of the protocol class (for ``uvicorn.Config(http=...)`` with workers)."""
    return f"{__name__}:{'HttpToolsProtocol' if httptools else 'H11Protocol'}"
