"""One inference call, shared by every protocol the server speaks, and its HTTP routes.

:func:`run` is the dataplane's one entry: acquire the loaded model, let the protocol read and
validate its request into a :class:`~fti.serving.dataplane.PreparedRequest`, predict through the
dynamic batcher, meter it and log it to the inference log. The Open Inference Protocol over HTTP
(JSON and the binary tensor extension), the KServe V1 ``:predict`` route and the gRPC service
(:mod:`fti.serving.grpc_service`) differ only in how they read the request and write the
response, so validation, limits, batching, metrics and logging are the same for all of them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from fti.errors import FtiError, ValidationError
from fti.serving import binary, protocol, routing
from fti.serving.dataplane import PreparedRequest, build_response
from fti.serving.request_log import InferenceRecord

if TYPE_CHECKING:
    import numpy as np
    from starlette.requests import Request

    from fti.serving.app import ServerState
    from fti.serving.loaded import LoadedModel
    from fti.serving.protocol import InferRequest
    from fti.serving.routing import Split


@dataclass(frozen=True)
class Read:
    """What a protocol read from its request: the rows to predict and what to answer with."""

    prepared: PreparedRequest
    request_id: str | None = None
    request: InferRequest | None = None
    """The validated request (None when the fast lane built the matrix straight from JSON)."""


@dataclass(frozen=True)
class Inference:
    """A finished inference: the model that answered, the request's id and every output."""

    loaded: LoadedModel
    request_id: str
    outputs: dict[str, np.ndarray]
    request: InferRequest | None
    variant: str | None = None
    """The variant that answered, when the deployment splits its traffic (else None)."""

    @property
    def requested(self) -> list[str] | None:
        return None if self.request is None else self.request.outputs


Reader = Callable[["LoadedModel"], Awaitable[Read]]


class RequestIds:
    """Ids for requests that bring none: 32 hex digits, a random prefix per process and a counter
    (a ``uuid4`` per request cost ~5 us of the request path). The prefix is drawn again in a
    forked worker, so workers never share ids."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._count = itertools.count()

    def next(self) -> str:
        if self._pid != os.getpid():
            self._pid, self._prefix, self._count = os.getpid(), uuid.uuid4().hex[:16], itertools.count()
        return f"{self._prefix}{next(self._count):016x}"


_request_ids = RequestIds()


async def run(
    state: ServerState,
    name: str,
    version: int | None,
    read: Reader,
    route: tuple[Split, str] | None = None,
) -> Inference:
    """Acquire ``name`` (``version``), read the request with ``read``, predict, meter and log.

    ``route`` is the deployment's traffic split and the variant its router picked for this
    request (:mod:`fti.serving.routing`); the variant's own model answers.

    Raises:
        FtiError: what the repository, the reader or the batcher raised (each counted as a
            failure of the model with its HTTP status).
    """
    repo = state.repository
    variant = answered = None
    if route is not None:
        split, picked = route
        variant, loaded = await routing.acquire(repo, split, picked)
        answered = routing.response_variant(split, variant)
    else:
        loaded = await repo.acquire(name, version)
    counters = loaded.counters
    counters.requests.inc()
    started = time.perf_counter()
    batcher = loaded.batcher
    assert batcher is not None
    predicting = False
    try:
        got = await read(loaded)
        predicting = True
        outputs = await batcher.predict(got.prepared.matrix, got.prepared.n)
    except FtiError as exc:
        counters.failures.labels(str(exc.http_status)).inc()
        raise
    except Exception:
        counters.failures.labels("500").inc()
        raise
    finally:
        if not predicting:
            batcher.cancel_expected()
        repo.release(loaded)
    request_id = got.request_id or _request_ids.next()
    counters.latency.observe(time.perf_counter() - started)
    loaded.last_inference_ms = int(time.time() * 1000)
    if state.request_logger is not None and loaded.spec.log_requests:
        state.request_logger.log(
            InferenceRecord(
                name,
                loaded.model_version.name,
                loaded.version,
                request_id,
                datetime.now(UTC),
                loaded.feature_names,
                got.prepared.matrix,
                outputs,
                got.prepared.logged,
                variant,
            )
        )
    return Inference(loaded, request_id, outputs, got.request, answered)


def routed(state: ServerState, name: str, version: int | None) -> Split | None:
    """The traffic split of deployment ``name`` when a request to it routes (not by version)."""
    return state.repository.splits.get(name) if version is None else None


def shadow_copy(state: ServerState, split: Split | None, name: str, done: Inference) -> None:
    """Queue a copy of a parsed request (gRPC, V1) for the deployment's shadow, in the JSON form
    the shadow reads; after the answer, never waits."""
    if split is None or not split.shadow or done.request is None:
        return
    inputs = [
        {"name": t.name, "shape": list(t.shape), "datatype": t.datatype, "data": t.data.reshape(-1).tolist()}
        for t in done.request.inputs
    ]
    state.shadow.submit(name, {"inputs": inputs}, done.request_id)


async def prepare(loaded: LoadedModel, request: InferRequest) -> PreparedRequest:
    """Validate ``request`` for ``loaded`` (in a thread when the online store is read)."""
    if not loaded.prepare_inline:
        return await asyncio.to_thread(loaded.prepare, request)
    return loaded.prepare(request)


# --- Open Inference Protocol over HTTP: JSON, or JSON + raw tensors -----------------------------
async def infer(request: Request, state: ServerState, name: str, version: int | None) -> Response:
    """``POST /v2/models/{m}[/versions/{v}]/infer``; a deployment that splits its traffic routes
    the request by its route key (so the body is read before the model is chosen) and copies it
    to its shadow after answering."""
    split = routed(state, name, version)
    body: bytes | None = None
    payload: Any = None
    raw: bytes | None = None
    header = request.headers.get(binary.HEADER)

    async def parse_body() -> None:
        nonlocal body, payload, raw
        body = await state.admission.read_body(request)
        if header is None:
            payload = protocol.loads(body)
        else:
            body, raw = binary.split_body(body, header)
            payload = protocol.loads(body)

    route = None
    if split is not None:  # the variant depends on the request's route key: read it first
        await parse_body()
        route = (split, split.pick(split.key(request.headers, payload)))

    async def read(loaded: LoadedModel) -> Read:
        if body is None:
            await parse_body()
        if raw is None:
            fast = loaded.fast_prepare(payload)
            if fast is not None:
                return Read(fast, payload.get("id"))
        parsed = protocol.parse_infer_request(payload, raw)
        return Read(await prepare(loaded, parsed), parsed.id, parsed)

    done = await run(state, name, version, read, route)
    answer = build_response(
        name, done.loaded.version, done.request_id, done.outputs, done.requested, done.variant
    )
    if split is not None and split.shadow and raw is None:  # after the answer; never waits
        state.shadow.submit(name, payload, done.request_id)
    parsed = done.request
    names = [o["name"] for o in answer["outputs"]]
    raw_names = (
        {n for n in names if binary.wanted(parsed.parameters, parsed.output_parameters, n)}
        if parsed is not None
        else set()
    )
    if not raw_names:
        return Response(protocol.dumps(answer), media_type="application/json")
    content, length = binary.response_body(answer, done.outputs, raw_names)
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(length)},
    )


# --- KServe V1: {"instances": [...]} -> {"predictions": [...]} ----------------------------------
async def v1_predict(request: Request, state: ServerState, name: str) -> Response:
    """``POST /v1/models/{m}:predict``: rows as lists (in input order) or objects (by input
    name); answers the model's first output (``predict``) per row. A deployment that splits its
    traffic routes the request as the V2 route does and names the variant in ``parameters``."""
    split = routed(state, name, None)
    payload: Any = None
    route = None
    if split is not None:
        payload = protocol.loads(await state.admission.read_body(request))
        champion = state.repository.get_loaded(name)
        names = None if champion is None else [i["name"] for i in champion.metadata()["inputs"]]
        route = (
            split,
            split.pick(v1_key(split, request.headers.get(routing.ROUTE_KEY_HEADER), payload, names)),
        )

    async def read(loaded: LoadedModel) -> Read:
        body = payload if payload is not None else protocol.loads(await state.admission.read_body(request))
        parsed = v1_request(body, loaded)
        return Read(await prepare(loaded, parsed), None, parsed)

    done = await run(state, name, None, read, route)
    shadow_copy(state, split, name, done)
    first = next(iter(done.outputs))
    answer: dict[str, Any] = {"predictions": done.outputs[first].tolist()}
    if done.variant is not None:
        answer["parameters"] = {"variant": done.variant}
    return Response(protocol.dumps(answer), media_type="application/json")


def v1_key(split: Split, header: str | None, payload: Any, names: list[str] | None) -> str | None:
    """The route key of a V1 request: the header, else the sticky input's value in the first
    instance (by name in an object; by the model's input order in a list)."""
    if header:
        return header
    rows = payload.get("instances") if isinstance(payload, dict) else None
    if split.sticky is None or not isinstance(rows, list) or not rows:
        return None
    first = rows[0]
    if isinstance(first, dict):
        value = first.get(split.sticky)
    elif isinstance(first, list) and names is not None and split.sticky in names and len(first) == len(names):
        value = first[names.index(split.sticky)]
    elif names == [split.sticky]:
        value = first
    else:
        return None
    return None if value is None or isinstance(value, list | dict) else str(value)


def v1_request(payload: Any, loaded: LoadedModel) -> InferRequest:
    """An Open Inference Protocol request from a V1 body, with the model's input datatypes.

    Raises:
        ValidationError: no ``instances`` list, rows of the wrong length or kind, unknown names.
    """
    from fti.serving.deployments import guess_datatype

    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise ValidationError('a V1 request is {"instances": [row, ...]}; each row a list or an object')
    protocol.check_fields(payload, ("instances", "parameters"), "the V1 request")
    rows: list[Any] = payload["instances"]
    if not rows:
        raise ValidationError("'instances' is empty; send one row per prediction")
    declared = {i["name"]: i["datatype"] for i in loaded.metadata()["inputs"]}
    names = list(declared)
    columns: dict[str, list[Any]]
    if all(isinstance(r, dict) for r in rows):
        names = list(rows[0])
        if any(list(r) != names for r in rows):
            raise ValidationError("every instance must have the same fields, in the same order")
        columns = {n: [r[n] for r in rows] for n in names}
    elif all(isinstance(r, list) for r in rows) or len(names) == 1:
        rows = [r if isinstance(r, list) else [r] for r in rows]
        bad = next((i for i, r in enumerate(rows) if len(r) != len(names)), None)
        if bad is not None:
            raise ValidationError(
                f"instances[{bad}] has {len(rows[bad])} values; the model takes {len(names)}: {names[:20]}"
            )
        columns = {n: [r[j] for r in rows] for j, n in enumerate(names)}
    else:
        raise ValidationError("instances must all be lists (values in input order) or all objects")
    inputs = []
    for i, (n, values) in enumerate(columns.items()):
        datatype = declared.get(n) or guess_datatype(n, values)
        item = {"name": n, "shape": [len(values)], "datatype": datatype, "data": values}
        inputs.append(protocol.parse_input(item, i))
    return protocol.InferRequest(None, inputs, None, {})


async def v1_model(request: Request, state: ServerState, name: str) -> Response:
    """``GET /v1/models/{m}``: ``{"name": m, "ready": bool}``."""
    ready = state.repository.not_ready_reason(name) is None  # NotFoundError: an unknown model
    return Response(protocol.dumps({"name": name, "ready": ready}), media_type="application/json")
