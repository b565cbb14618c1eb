"""The Open Inference Protocol over gRPC (``fti serve --grpc-port``): KServe V2's
``inference.GRPCInferenceService`` with Triton's model repository extension.

It runs in the same event loop and process as the REST app and shares its
:class:`~fti.serving.app.ServerState`: the same repository (hot swaps, lazy loading, readiness),
the same inference call (:func:`fti.serving.infer.run`: validation, batching, metrics,
inference log), the same API keys (``authorization: Bearer <key>`` metadata) and the same limits
(the in-flight cap sheds ``ModelInfer`` with ``UNAVAILABLE``; messages beyond
``max_body_bytes`` are refused by gRPC with ``RESOURCE_EXHAUSTED``). Errors are the REST
errors' messages with the gRPC status of their HTTP status (400 ``INVALID_ARGUMENT``, 404
``NOT_FOUND``, 503 ``UNAVAILABLE``, ...). Tensors travel as ``raw_input_contents`` /
``raw_output_contents`` (:mod:`fti.serving.binary`) or typed ``contents``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from fti.errors import FtiError, NotFoundError, ValidationError
from fti.serving import binary, protocol
from fti.serving.grpc_triton import UNSUPPORTED, TritonExtensions, unsupported
from fti.serving.infer import Read, prepare, routed, run, shadow_copy
from fti.serving.limits import OverloadedError, overloaded_message
from fti.serving.proto import inference_pb2 as pb
from fti.serving.routing import ROUTE_KEY_HEADER

if TYPE_CHECKING:
    from fti.serving.app import ServerState
    from fti.serving.loaded import LoadedModel

log = logging.getLogger("fti.serving")

SERVICE = "inference.GRPCInferenceService"
_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    409: grpc.StatusCode.ALREADY_EXISTS,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
# typed contents field of each datatype (FP16 has none: it travels raw)
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _version(name: str, raw: str) -> int | None:
    if not raw:
        return None
    version = protocol.as_version(raw)
    if version is None:
        raise NotFoundError(
            f"model {name!r} has no version {protocol.short_repr(raw)}: versions are integers"
        )
    return version


def _parameters(params: Any) -> dict[str, Any]:
    """A protobuf map of parameters as a dict of plain values."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        choice = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, choice) if choice is not None else None
    return out


def infer_request(message: pb.ModelInferRequest) -> protocol.InferRequest:
    """The validated request of a ``ModelInferRequest``.

    Raises:
        ValidationError: naming the input: raw contents that do not match the inputs, contents
            in the field of another datatype, values the datatype cannot hold.
    """
    raw = list(message.raw_input_contents)
    if raw and len(raw) != len(message.inputs):
        raise ValidationError(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs; send one per input"
        )
    if not message.inputs:
        raise ValidationError("the request has no inputs")
    inputs = []
    for i, tensor in enumerate(message.inputs):
        name, datatype, shape = tensor.name, tensor.datatype, list(tensor.shape)
        if raw:
            if tensor.HasField("contents"):
                raise ValidationError(f"input {name!r}: send contents or raw_input_contents, not both")
            inputs.append(binary.decode(name, datatype, shape, raw[i]))
            continue
        field = _CONTENTS.get(datatype)
        present = [f.name for f, _ in tensor.contents.ListFields()]
        if field is None or any(f != field for f in present):
            expected = f"in {field}" if field is not None else "as raw_input_contents"
            raise ValidationError(
                f"input {name!r}: datatype {protocol.short_repr(datatype)} data goes {expected}, got {present}"
            )
        data: list[Any] = list(getattr(tensor.contents, field))
        if datatype == "BYTES":
            try:
                data = [v.decode() for v in data]
            except UnicodeDecodeError:
                raise ValidationError(f"input {name!r}: BYTES elements must be UTF-8 text") from None
        item = {"name": name, "shape": shape, "datatype": datatype, "data": data}
        inputs.append(protocol.parse_input(item, i))
    names = [t.name for t in inputs]
    if len(set(names)) != len(names):
        raise ValidationError(
            f"input(s) {sorted({n for n in names if names.count(n) > 1})} given more than once"
        )
    outputs = [o.name for o in message.outputs] or None
    return protocol.InferRequest(message.id or None, inputs, outputs, _parameters(message.parameters))


class GrpcService:
    """The RPCs, each a coroutine taking the request message and the call's context."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def server_live(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.state.repository.readiness() is None)

    async def server_metadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        import fti

        extensions = ["model_repository", "model_configuration", "statistics"]
        return pb.ServerMetadataResponse(name="fti", version=fti.__version__, extensions=extensions)

    async def model_ready(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        version = _version(request.name, request.version)
        repo = self.state.repository
        if repo.not_ready_reason(request.name, version) is None:
            return pb.ModelReadyResponse(ready=True)
        await repo.check_version(request.name, version)  # NOT_FOUND for a version that does not exist
        return pb.ModelReadyResponse(ready=False)

    async def model_metadata(
        self, request: pb.ModelMetadataRequest, context: Any
    ) -> pb.ModelMetadataResponse:
        name, version = request.name, _version(request.name, request.version)
        repo = self.state.repository
        loaded = repo.get_loaded(name, version)
        if loaded is None:
            loaded = await repo.acquire(name, version)  # lazy load, or a clear error
            repo.release(loaded)
        meta = loaded.metadata()
        tensors = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[
                tensors(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["inputs"]
            ],
            outputs=[
                tensors(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["outputs"]
            ],
        )

    async def model_infer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        admission = self.state.admission
        if admission.inflight >= admission.limits.max_inflight:
            admission.shed += 1
            raise OverloadedError(overloaded_message(admission.limits))
        admission.inflight += 1
        try:
            return await self._infer(request, context)
        finally:
            admission.inflight -= 1

    async def _infer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        name = request.model_name
        version = _version(name, request.model_version)
        split = routed(self.state, name, version)
        parsed = None
        route = None
        if split is not None:  # the variant depends on the route key: parse the request first
            parsed = infer_request(request)
            metadata = dict(context.invocation_metadata() or ())
            route = (split, split.pick(split.key_of(metadata.get(ROUTE_KEY_HEADER), parsed)))

        async def read(loaded: LoadedModel) -> Read:
            got = parsed if parsed is not None else infer_request(request)
            return Read(await prepare(loaded, got), got.id, got)

        done = await run(self.state, name, version, read, route)
        shadow_copy(self.state, split, name, done)
        response = pb.ModelInferResponse(
            model_name=name, model_version=str(done.loaded.version), id=done.request_id
        )
        if done.variant is not None:  # as the REST response's "parameters"
            response.parameters["variant"].string_param = done.variant
        for output in done.requested or list(done.outputs):
            array = done.outputs[output]
            response.outputs.add(name=output, datatype=protocol.datatype_of(array), shape=list(array.shape))
            response.raw_output_contents.append(binary.encode(array))
        return response

    async def repository_index(
        self, request: pb.RepositoryIndexRequest, context: Any
    ) -> pb.RepositoryIndexResponse:
        entries = self.state.repository.index()
        if request.ready:
            entries = [e for e in entries if e["state"] == "READY"]
        index = pb.RepositoryIndexResponse.ModelIndex
        return pb.RepositoryIndexResponse(
            models=[
                index(name=e["name"], version=e["version"] or "", state=e["state"], reason=e["reason"])
                for e in entries
            ]
        )

    async def repository_model_load(self, request: Any, context: Any) -> pb.RepositoryModelLoadResponse:
        version = _repository_version(request)
        await self.state.repository.check_version(request.model_name, version)
        await self.state.repository.load(request.model_name, version)
        return pb.RepositoryModelLoadResponse()

    async def repository_model_unload(self, request: Any, context: Any) -> pb.RepositoryModelUnloadResponse:
        await self.state.repository.unload(request.model_name, _repository_version(request))
        return pb.RepositoryModelUnloadResponse()


def _repository_version(request: Any) -> int | None:
    """The ``version`` parameter of a load/unload request; Triton's ``unload_dependents`` is
    accepted (fti models have no dependents), a model ``config`` or files are refused."""
    params = _parameters(request.parameters)
    unknown = sorted(set(params) - {"version", "unload_dependents"})
    if unknown:
        raise ValidationError(
            f"unsupported parameter(s) {unknown}: fti loads registered model versions; pass only 'version'"
        )
    raw = params.get("version")
    if raw is None:
        return None
    version = protocol.as_version(raw)
    if version is None:
        raise ValidationError(f"parameter 'version' must be an integer from 1 to {protocol.MAX_VERSION}")
    return version


# method name -> (coroutine name, request message, admin only, needs a key)
_METHODS: dict[str, tuple[str, Any, bool, bool]] = {
    "ServerLive": ("server_live", pb.ServerLiveRequest, False, False),
    "ServerReady": ("server_ready", pb.ServerReadyRequest, False, False),
    "ModelReady": ("model_ready", pb.ModelReadyRequest, False, True),
    "ServerMetadata": ("server_metadata", pb.ServerMetadataRequest, False, True),
    "ModelMetadata": ("model_metadata", pb.ModelMetadataRequest, False, True),
    "ModelInfer": ("model_infer", pb.ModelInferRequest, False, True),
    "ModelConfig": ("model_config", pb.ModelConfigRequest, False, True),
    "ModelStatistics": ("model_statistics", pb.ModelStatisticsRequest, False, True),
    "RepositoryIndex": ("repository_index", pb.RepositoryIndexRequest, False, True),
    "RepositoryModelLoad": ("repository_model_load", pb.RepositoryModelLoadRequest, True, True),
    "RepositoryModelUnload": ("repository_model_unload", pb.RepositoryModelUnloadRequest, True, True),
}


def _guarded(
    state: ServerState, method: str, call: Callable[[Any, Any], Awaitable[Any]], admin: bool, auth: bool
) -> Callable[[Any, Any], Awaitable[Any]]:
    async def handle(request: Any, context: Any) -> Any:
        try:
            if auth:
                metadata = dict(context.invocation_metadata() or ())
                principal = await state.authenticate_header(metadata.get("authorization"))
                if admin:
                    principal.require("admin", f"gRPC {method}")
            return await call(request, context)
        except FtiError as exc:
            await context.abort(_STATUS.get(exc.http_status, grpc.StatusCode.INTERNAL), exc.message)
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            log.exception("unhandled error in gRPC %s", method)
            await context.abort(
                grpc.StatusCode.INTERNAL, f"internal server error ({type(exc).__name__}); see the server log"
            )

    return handle


def _guarded_stream(
    state: ServerState, call: Callable[[Any, Any], AsyncIterator[Any]]
) -> Callable[[Any, Any], AsyncIterator[Any]]:
    """A streaming RPC behind the API key check (once per stream; errors of its requests are
    answered in the stream, see :mod:`fti.serving.grpc_triton`)."""

    async def handle(requests: Any, context: Any) -> AsyncIterator[Any]:
        try:
            metadata = dict(context.invocation_metadata() or ())
            await state.authenticate_header(metadata.get("authorization"))
        except FtiError as exc:
            await context.abort(_STATUS.get(exc.http_status, grpc.StatusCode.INTERNAL), exc.message)
        async for response in call(requests, context):
            yield response

    return handle


def handler(state: ServerState) -> grpc.GenericRpcHandler:
    """The service's RPC handler over ``state``: the Open Inference Protocol, Triton's
    repository, streaming, configuration and statistics extensions, and ``UNIMPLEMENTED`` with a
    message for Triton's shared-memory, trace and log RPCs."""
    service = GrpcService(state)
    extensions = TritonExtensions(service)

    def serialize(response: Any) -> bytes:
        return response.SerializeToString()  # type: ignore[no-any-return]

    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            _guarded(state, method, getattr(service, attr, None) or getattr(extensions, attr), admin, auth),
            request_deserializer=message.FromString,
            response_serializer=serialize,
        )
        for method, (attr, message, admin, auth) in _METHODS.items()
    }
    handlers["ModelStreamInfer"] = grpc.stream_stream_rpc_method_handler(
        _guarded_stream(state, extensions.model_stream_infer),
        request_deserializer=pb.ModelInferRequest.FromString,
        response_serializer=serialize,
    )
    for method in UNSUPPORTED:
        handlers[method] = grpc.unary_unary_rpc_method_handler(unsupported(method))
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


async def start(state: ServerState, address: str) -> tuple[grpc.aio.Server, int]:
    """Serve the gRPC service on ``address`` (``host:port``; port 0 picks a free one).

    Returns:
        The running server and its port.
    """
    limit = state.limits.max_body_bytes
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 1)],
    )
    server.add_generic_rpc_handlers((handler(state),))
    port = server.add_insecure_port(address)
    await server.start()
    log.info("gRPC (Open Inference Protocol) on %s", address.rsplit(":", 1)[0] + f":{port}")
    return server, port
