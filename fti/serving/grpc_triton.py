"""Triton's gRPC extensions beyond the Open Inference Protocol: streaming inference
(``ModelStreamInfer``), model configuration (``ModelConfig``) and statistics
(``ModelStatistics``), so ``tritonclient.grpc``'s ``start_stream``/``async_stream_infer``,
``get_model_config`` and ``get_inference_statistics`` work unmodified.

- **Streaming**: each request of the stream is one ``ModelInfer`` (same routing, validation,
  batching, limits and inference log); requests of a stream are answered concurrently, each
  response carrying its request's ``id``, in the order they finish. A failed request answers
  with ``error_message`` and the stream goes on, as in Triton. A stream holds at most
  ``max_inflight`` requests at a time, so a client that sends faster than the server answers
  is slowed by gRPC flow control instead of growing the server's memory.
- **ModelConfig** is the deployment's signature and batching in Triton's terms: inputs and
  outputs with ``TYPE_*`` datatypes and their dims after the batch axis, ``max_batch_size``,
  ``dynamic_batching.max_queue_delay_microseconds``.
- **ModelStatistics** come from the server's Prometheus metrics of this worker: successful
  requests and their total latency, failures, queue time, rows inferred (``inference_count``) and
  predict calls (``execution_count``), and the time of the last inference.

Shared-memory tensors (system and CUDA) and the trace and log settings are not supported: those
RPCs answer ``UNIMPLEMENTED`` with a message saying what to do instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from fti.errors import FtiError, NotFoundError
from fti.serving import routing
from fti.serving.proto import inference_pb2 as pb

if TYPE_CHECKING:
    from fti.serving.app import ServerState
    from fti.serving.grpc_service import GrpcService
    from fti.serving.loaded import LoadedModel

log = logging.getLogger("fti.serving")

UNSUPPORTED = {
    **dict.fromkeys(
        (
            "SystemSharedMemoryStatus",
            "SystemSharedMemoryRegister",
            "SystemSharedMemoryUnregister",
            "CudaSharedMemoryStatus",
            "CudaSharedMemoryRegister",
            "CudaSharedMemoryUnregister",
        ),
        "fti does not support shared-memory tensors: send the tensors in the request "
        "(raw_input_contents or typed contents) and read them from the response",
    ),
    "TraceSetting": "fti does not support Triton's trace settings: use the server's logs and /metrics",
    "LogSettings": "fti does not support Triton's log settings: set the level with fti serve --log-level",
}


class TritonExtensions:
    """The streaming, configuration and statistics RPCs over the service's state."""

    def __init__(self, service: GrpcService) -> None:
        self.service = service
        self.state: ServerState = service.state

    async def model_config(self, request: pb.ModelConfigRequest, context: Any) -> pb.ModelConfigResponse:
        from fti.serving.grpc_service import _version

        loaded = await self._loaded(request.name, _version(request.name, request.version))
        meta, spec = loaded.metadata(), loaded.spec

        def dims(shape: list[int]) -> list[int]:
            return list(shape[1:]) or [1]  # after the batch axis; a scalar per row is [1]

        return pb.ModelConfigResponse(
            config=pb.ModelConfig(
                name=meta["name"],
                platform=meta["platform"],
                backend="fti",
                max_batch_size=spec.max_batch_size,
                input=[pb.ModelInput(name=t["name"], data_type=_type(t["datatype"]), dims=dims(t["shape"]))
                       for t in meta["inputs"]],
                output=[pb.ModelOutput(name=t["name"], data_type=_type(t["datatype"]), dims=dims(t["shape"]))
                        for t in meta["outputs"]],
                dynamic_batching=pb.ModelDynamicBatching(
                    max_queue_delay_microseconds=round(spec.max_batch_delay_ms * 1000)
                ),
            )
        )  # fmt: skip

    async def _loaded(self, name: str, version: int | None) -> LoadedModel:
        repo = self.state.repository
        loaded = repo.get_loaded(name, version)
        if loaded is None:
            loaded = await repo.acquire(name, version)  # lazy load, or a clear error
            repo.release(loaded)
        return loaded

    async def model_statistics(
        self, request: pb.ModelStatisticsRequest, context: Any
    ) -> pb.ModelStatisticsResponse:
        from fti.serving.grpc_service import _version

        name, version = request.name, _version(request.name, request.version)
        repo = self.state.repository
        if name:
            repo.not_ready_reason(name)  # NotFoundError for a model the server does not serve
        wanted = [
            (e["name"], int(e["version"]))
            for e in repo.index()
            if e["version"]
            and (not name or e["name"] == name)
            and (version is None or int(e["version"]) == version)
        ]
        if name and version is not None and not wanted:
            raise NotFoundError(f"model {name!r} has no loaded version {version}; load it first")
        samples = _samples(self.state.metrics.registry)
        stats = []
        for model, number in wanted:
            deployment, variant = routing.split_name(model)
            labels = (("model", deployment), ("version", str(number)))
            per_variant = (*labels, ("variant", variant))
            loaded = repo.get_loaded(model, number)
            stats.append(
                pb.ModelStatistics(
                    name=model,
                    version=str(number),
                    last_inference=0 if loaded is None else loaded.last_inference_ms,
                    inference_count=int(samples["fti_batch_size_sum"][labels]),
                    execution_count=int(samples["fti_batch_size_count"][labels]),
                    inference_stats=pb.InferStatistics(
                        success=_duration(samples, "fti_inference_latency_seconds", per_variant),
                        fail=pb.StatisticDuration(
                            count=int(samples["fti_inference_failures_total"][per_variant])
                        ),
                        queue=_duration(samples, "fti_inference_queue_seconds", labels),
                    ),
                )
            )
        return pb.ModelStatisticsResponse(model_stats=stats)

    async def model_stream_infer(
        self, requests: AsyncIterator[pb.ModelInferRequest], context: Any
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        limit = self.state.admission.limits.max_inflight
        slots = asyncio.Semaphore(limit)
        answers: asyncio.Queue[pb.ModelStreamInferResponse | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()

        async def answer(request: pb.ModelInferRequest) -> None:
            try:
                response = await self.service.model_infer(request, context)
                await answers.put(pb.ModelStreamInferResponse(infer_response=response))
            except Exception as exc:  # one failed request fails only its own answer
                if not isinstance(exc, FtiError):
                    log.exception("unhandled error in gRPC ModelStreamInfer")
                message = (
                    exc.message
                    if isinstance(exc, FtiError)
                    else f"internal server error ({type(exc).__name__})"
                )
                echo = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
                await answers.put(pb.ModelStreamInferResponse(error_message=message, infer_response=echo))
            finally:
                slots.release()

        async def feed() -> None:
            try:
                async for request in requests:
                    await slots.acquire()  # at most `limit` requests of this stream at a time
                    task = asyncio.create_task(answer(request))
                    running.add(task)
                    task.add_done_callback(running.discard)
                while running:
                    await asyncio.gather(*list(running))
            finally:
                await answers.put(None)

        feeder = asyncio.create_task(feed())
        try:
            while (item := await answers.get()) is not None:
                yield item
            await feeder  # re-raise what reading the stream raised
        finally:
            feeder.cancel()
            for task in list(running):
                task.cancel()


def _type(datatype: str) -> int:
    """Triton's model-config data type of an OIP datatype (BYTES is TYPE_STRING)."""
    return int(pb.DataType.Value("TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"))


def _samples(registry: Any) -> dict[str, defaultdict[tuple[tuple[str, str], ...], float]]:
    """Every sample of ``registry``: name -> labels (model, version[, variant]) -> value, summed
    over the other labels (the failures' status)."""
    out: dict[str, defaultdict[tuple[tuple[str, str], ...], float]] = defaultdict(lambda: defaultdict(float))
    for metric in registry.collect():
        for sample in metric.samples:
            if "model" not in sample.labels:
                continue
            keep = tuple((k, sample.labels[k]) for k in ("model", "version", "variant") if k in sample.labels)
            out[sample.name][keep] += sample.value
    return out


def _duration(
    samples: dict[str, defaultdict[tuple[tuple[str, str], ...], float]],
    histogram: str,
    labels: tuple[tuple[str, str], ...],
) -> pb.StatisticDuration:
    count = samples[f"{histogram}_count"][labels]
    seconds = samples[f"{histogram}_sum"][labels]
    return pb.StatisticDuration(count=int(count), ns=round(seconds * 1e9))


def unsupported(method: str) -> Callable[[Any, Any], Awaitable[Any]]:
    """An RPC that answers ``UNIMPLEMENTED`` with what to do instead."""

    async def refuse(request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method}: {UNSUPPORTED[method]}")

    return refuse
