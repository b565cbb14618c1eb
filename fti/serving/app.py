"""The REST app of the model server (Starlette): Open Inference Protocol V2 routes.

Every error is ``{"error": "<message>"}`` with its status: 400 bad request, 401 missing or
invalid API key, 403 a key whose role does not allow the route (loading and unloading models
needs ``admin``), 404 unknown model/version or feature key, 405 wrong method (with ``Allow``),
408 a body too slow to arrive (the connection is closed), 413 body too large, 503 loading, not
ready, overloaded or queue full (with ``Retry-After``), 504 timeout, and 500 only for genuine
server faults. Each request is written to the ``fti.serving.access`` logger as one JSON line.
The limits are in :mod:`fti.serving.limits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fti.errors import (
    AuthenticationError,
    BackendError,
    ConflictError,
    FtiError,
    ModelNotReadyError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from fti.serving import infer as _infer
from fti.serving import protocol, push
from fti.serving.auth import KeyChecker, Principal
from fti.serving.batching import InferenceTimeoutError, QueueFullError
from fti.serving.drift_metrics import DriftGauges
from fti.serving.limits import (
    Admission,
    OverloadedError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerLimits,
    ShedMiddleware,
)
from fti.serving.metrics import ServerMetrics
from fti.serving.repository import ModelRepository
from fti.serving.request_log import RequestLogger
from fti.serving.rollouts.gates import StatsFlusher
from fti.serving.shadow import ShadowQueue

if TYPE_CHECKING:
    from fti.project import Project

log = logging.getLogger("fti.serving")
access_log = logging.getLogger("fti.serving.access")

DEFAULT_MAX_BODY_BYTES = ServerLimits.max_body_bytes
GZIP_MIN_BYTES = 1400
"""Responses from this size on are gzipped when the client sends ``Accept-Encoding: gzip``."""


def error_for_status(status: int, message: str) -> FtiError:
    """The FtiError a client raises for an error response of the server."""
    classes: dict[int, type[FtiError]] = {
        400: ValidationError,
        408: RequestTimeoutError,
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
        409: ConflictError,
        413: PayloadTooLargeError,
        503: ModelNotReadyError,
        504: InferenceTimeoutError,
    }
    cls = classes.get(status, BackendError if status >= 500 else ValidationError)
    return cls(f"model server answered {status}: {message}")


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return protocol.dumps(content)


def error_response(exc: FtiError) -> Response:
    headers = {}
    if exc.http_status == 503:
        headers["Retry-After"] = str(getattr(exc, "retry_after", 1))
    elif exc.http_status == 408:  # the rest of a slow body is not waited for: the connection ends
        headers["Connection"] = "close"
    return JsonResponse({"error": exc.message}, status_code=exc.http_status, headers=headers)


class ServerState:
    """Everything the routes share: repository, metrics, auth, request log, limits."""

    def __init__(
        self,
        project: Project,
        *,
        lazy: bool,
        poll_interval_s: float,
        idle_unload_s: float,
        limits: ServerLimits,
        log_requests: bool,
    ) -> None:
        self.project = project
        self.metrics = ServerMetrics()
        self.auth = KeyChecker(project)
        self.request_logger = RequestLogger(project, self.metrics) if log_requests else None
        self.repository = ModelRepository(
            project,
            self.metrics,
            request_logger=self.request_logger,
            lazy=lazy,
            idle_unload_s=idle_unload_s,
            poll_interval_s=poll_interval_s,
            on_poll=self._refresh_keys,
        )
        self.limits = limits
        self.admission = Admission(limits)
        self.metrics.watch(self.admission)
        self.shadow = ShadowQueue(self.repository, self.metrics, self.request_logger)
        self.stats = StatsFlusher(project, self.metrics)
        self._auth_refreshing = False
        self.grpc_port: int | None = None  # the gRPC protocol's port, when served
        self.drift = DriftGauges(project)  # monitoring's latest statistics, read on the poll
        self.metrics.collect_with(self.drift)
        self.push = push.PushRoute(project)  # POST /v1/feature-groups/{name}/push

    def _refresh_keys(self) -> None:
        self.auth.refresh()
        self.drift.refresh()
        self.stats.flush()  # per-variant counters for rollout gates (fti.serving.rollouts.gates)

    async def authenticate(self, request: Request) -> Principal:
        """The request's principal: from its API key, or the one the web UI (mounted in this
        process) authenticated and put in the ASGI scope, which no client can set."""
        forwarded = request.scope.get(PRINCIPAL_SCOPE_KEY)
        if isinstance(forwarded, Principal):
            return forwarded
        return await self.authenticate_header(request.headers.get("authorization"))

    async def authenticate_header(self, header: str | None) -> Principal:
        """The principal of an ``Authorization`` header (HTTP) or metadata entry (gRPC)."""
        if self.auth.is_valid(header):
            return self.auth.identify(header)
        if self.auth.needs_refresh(miss=True) and not self._auth_refreshing:  # a brand-new key?
            self._auth_refreshing = True
            try:
                await asyncio.to_thread(self.auth.refresh)
            finally:
                self._auth_refreshing = False
        return self.auth.identify(header)


Handler = Callable[[Request, ServerState], Awaitable[Response]]

PRINCIPAL_SCOPE_KEY = "fti.principal"
"""ASGI scope key of a :class:`Principal` the in-process web UI already authenticated."""


def _route(
    path: str, handler: Handler, methods: list[str], *, auth: bool = True, role: str | None = None
) -> Route:
    """A route whose handler runs after authentication (and, with ``role``, a role check)."""

    async def endpoint(request: Request) -> Response:
        state: ServerState = request.app.state.fti
        started = time.perf_counter()
        try:
            if auth:
                principal = await state.authenticate(request)
                if role is not None:
                    principal.require(role, f"{request.method} {request.url.path}")
            response = await handler(request, state)
        except FtiError as exc:
            response = error_response(exc)
        except Exception as exc:  # a genuine fault: log it, answer 500 without internals
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            response = JsonResponse(
                {"error": f"internal server error ({type(exc).__name__}); see the server log"},
                status_code=500,
            )
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                orjson.dumps(
                    {
                        "method": request.method,
                        "path": request.url.path,
                        "status": response.status_code,
                        "ms": round((time.perf_counter() - started) * 1000, 3),
                        "client": request.client.host if request.client else None,
                    }
                ).decode()
            )
        return response

    return Route(path, endpoint, methods=methods)


def _version(request: Request) -> int | None:
    raw = request.path_params.get("version")
    if raw is None:
        return None
    version = protocol.as_version(raw)
    if version is None:
        shown = raw if len(raw) <= 24 else raw[:21] + "..."
        raise NotFoundError(
            f"model {request.path_params['model']!r} has no version {shown!r}: versions are "
            f"integers from 1 to {protocol.MAX_VERSION}"
        )
    return version


# --- routes ---------------------------------------------------------------------------------
async def live(request: Request, state: ServerState) -> Response:
    return JsonResponse({"live": True})


async def ready(request: Request, state: ServerState) -> Response:
    reason = state.repository.readiness()
    if reason is None:
        return JsonResponse({"ready": True})
    if state.repository.loading:
        raise ModelNotReadyError(reason)
    raise ModelNotReadyError(f"not ready: {reason}; see /v2/repository/index")


async def server_metadata(request: Request, state: ServerState) -> Response:
    import fti

    return JsonResponse({"name": "fti", "version": fti.__version__, "extensions": ["model_repository"]})


async def model_metadata(request: Request, state: ServerState) -> Response:
    name, version = request.path_params["model"], _version(request)
    loaded = state.repository.get_loaded(name, version)
    if loaded is None:
        loaded = await state.repository.acquire(name, version)  # lazy load, or a clear error
        state.repository.release(loaded)
    return JsonResponse(loaded.metadata())


async def model_ready(request: Request, state: ServerState) -> Response:
    name, version = request.path_params["model"], _version(request)
    reason = state.repository.not_ready_reason(name, version)
    if reason is not None:
        await state.repository.check_version(name, version)
        raise ModelNotReadyError(reason)
    loaded = state.repository.get_loaded(name, version)
    assert loaded is not None
    return JsonResponse({"name": name, "version": str(loaded.version), "ready": True})


async def infer(request: Request, state: ServerState) -> Response:
    return await _infer.infer(request, state, request.path_params["model"], _version(request))


async def v1_predict(request: Request, state: ServerState) -> Response:
    return await _infer.v1_predict(request, state, request.path_params["model"])


async def v1_model(request: Request, state: ServerState) -> Response:
    return await _infer.v1_model(request, state, request.path_params["model"])


async def _json_body(request: Request, state: ServerState) -> dict[str, Any]:
    body = await state.admission.read_body(request)
    if not body.strip():
        return {}
    payload = protocol.loads(body)
    if not isinstance(payload, dict):
        raise ValidationError("request body must be a JSON object")
    return payload


async def repository_index(request: Request, state: ServerState) -> Response:
    payload = await _json_body(request, state)
    protocol.check_fields(payload, ("ready",), "the repository index request")
    ready_only = payload.get("ready")
    if ready_only is not None and not isinstance(ready_only, bool):
        raise ValidationError(f"'ready' must be true or false, got {ready_only!r}")
    entries = state.repository.index()
    if ready_only:
        entries = [e for e in entries if e["state"] == "READY"]
    return JsonResponse(entries)


async def repository_load(request: Request, state: ServerState) -> Response:
    payload = await _json_body(request, state)
    name = request.path_params["model"]
    version = protocol.parameter_version(payload)
    await state.repository.check_version(name, version)
    await state.repository.load(name, version)
    return JsonResponse({})


async def repository_unload(request: Request, state: ServerState) -> Response:
    payload = await _json_body(request, state)
    await state.repository.unload(request.path_params["model"], protocol.parameter_version(payload))
    return JsonResponse({})


async def metrics(request: Request, state: ServerState) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request, state: ServerState) -> Response:
    from fti.serving.openapi import openapi_document

    return JsonResponse(openapi_document())


async def not_found(request: Request, exc: Exception) -> Response:
    return JsonResponse(
        {"error": f"no route {request.method} {request.url.path}; see /openapi.json"}, status_code=404
    )


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 405)
    headers = dict(getattr(exc, "headers", None) or {})  # Starlette's router names the methods in Allow
    allowed = headers.get("Allow")
    if allowed:  # in a stable order
        allowed = headers["Allow"] = ", ".join(sorted(m.strip() for m in allowed.split(",")))
    hint = f"; use {allowed}" if allowed else ""
    return JsonResponse(
        {"error": f"{request.method} is not allowed on {request.url.path}{hint}"},
        status_code=status,
        headers=headers,
    )


def create_app(
    project: Project,
    *,
    lazy: bool = False,
    poll_interval_s: float = 2.0,
    idle_unload_s: float = 300.0,
    max_body_bytes: int | None = None,
    log_requests: bool = True,
    limits: ServerLimits | None = None,
    grpc_address: str | None = None,
    load_before_listening: bool = False,
) -> Starlette:
    """The model server app for ``project``'s running deployments.

    Args:
        project: The project whose deployments are served.
        lazy: Load each model on its first request and unload it after ``idle_unload_s``.
        poll_interval_s: How often alias moves (hot swap), deployment changes and keys are read.
        idle_unload_s: Idle time before a lazily loaded model is unloaded.
        max_body_bytes: Larger request bodies get 413 (the same as ``limits.max_body_bytes``).
        log_requests: Append inferences to the ``<deployment>_inference_log`` feature groups.
        limits: In-flight, body-size, buffered-bytes and timeout limits of the worker
            (:class:`~fti.serving.limits.ServerLimits`; its connection limits apply when it is
            served by ``fti serve`` or ``fti.testing.serving.running_server``).
        grpc_address: Also serve the gRPC protocol on this ``host:port`` (port 0: a free one,
            then in ``app.state.fti.grpc_port``) while the app runs; needs ``fti[grpc]``.
        load_before_listening: Load the deployments before the app's startup ends, so its server
            takes connections only once they are loaded (``fti serve --workers N``: a worker
            still loading never takes a request its ready siblings could answer). By default
            the app listens at once and answers 503 "loading" meanwhile.
    """
    limits = limits or ServerLimits()
    if max_body_bytes is not None:
        limits = dataclasses.replace(limits, max_body_bytes=max_body_bytes)
    state = ServerState(
        project,
        lazy=lazy,
        poll_interval_s=poll_interval_s,
        idle_unload_s=idle_unload_s,
        limits=limits,
        log_requests=log_requests,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state.request_logger is not None:
            state.request_logger.start()
        # by default listen at once: the deployments load in the background, requests meanwhile
        # get 503 "loading" (liveness is 200, readiness 503)
        await state.repository.start(background=not load_before_listening)
        from fti.streaming import committer  # commits pushed rows; replays what a crash left

        committer.start(project)
        grpc_server = None
        if grpc_address is not None:
            from fti.serving import grpc_service

            grpc_server, state.grpc_port = await grpc_service.start(state, grpc_address)
        state.shadow.start()
        # Move everything loaded so far (libraries) out of the collector's sight: full
        # collections would otherwise walk millions of library objects and stall requests for
        # 100+ ms (measured: p99 at 8 clients 160 ms -> 1.3 ms). Each model load freezes again.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(grace=limits.body_timeout_s)
            await state.shadow.stop()
            await state.repository.stop()
            await asyncio.to_thread(committer.stop, project)
            if state.request_logger is not None:
                await asyncio.to_thread(state.request_logger.stop)
            gc.unfreeze()  # let the interpreter (or the next app in this process) collect normally

    m = "/v2/models/{model}"
    mv = "/v2/models/{model}/versions/{version}"
    routes = [  # infer first: routes are matched in order
        _route(f"{m}/infer", infer, ["POST"]),
        _route(f"{mv}/infer", infer, ["POST"]),
        _route("/v1/models/{model}:predict", v1_predict, ["POST"]),  # KServe V1, for older clients
        _route("/v1/models/{model}", v1_model, ["GET"]),
        _route("/v2/health/live", live, ["GET"], auth=False),
        _route("/v2/health/ready", ready, ["GET"], auth=False),
        _route("/v2", server_metadata, ["GET"]),
        _route(m, model_metadata, ["GET"]),
        _route(mv, model_metadata, ["GET"]),
        _route(f"{m}/ready", model_ready, ["GET"]),
        _route(f"{mv}/ready", model_ready, ["GET"]),
        _route("/v2/repository/index", repository_index, ["POST"]),
        # loading and unloading change what the server serves (and its readiness): admins only
        _route("/v2/repository/models/{model}/load", repository_load, ["POST"], role="admin"),
        _route("/v2/repository/models/{model}/unload", repository_unload, ["POST"], role="admin"),
        _route(push.PATH, push.handle, ["POST"], role="writer"),
        _route("/metrics", metrics, ["GET"]),
        _route("/openapi.json", openapi, ["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: method_not_allowed},
        # outermost: an overloaded worker refuses before routing, authenticating or reading.
        # Responses are gzipped for clients that accept it, once past about a packet: a
        # one-row prediction is smaller than what compressing it would save
        middleware=[
            Middleware(ShedMiddleware, admission=state.admission),
            Middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=6),
        ],
    )
    app.state.fti = state
    return app


__all__ = [
    "OverloadedError",
    "PayloadTooLargeError",
    "QueueFullError",
    "RequestTimeoutError",
    "ServerLimits",
    "create_app",
    "error_for_status",
]
