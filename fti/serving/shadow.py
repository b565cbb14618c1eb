"""Shadow traffic: a copy of each request goes to a deployment's shadow model, off the request path.

``project.serving.deploy("fraud", model="fraud@production", shadow="fraud@candidate")`` — once the
primary answer is computed, the request's payload is put (without waiting) into a bounded queue;
a few worker tasks of the server take it from there, predict with the shadow model (its own
feature view version when enriched, its own dynamic batcher) and log the outputs to the inference
log with ``variant = "shadow"`` under the primary's request id followed by ``#shadow``
(:data:`SHADOW_REQUEST_SUFFIX`): the log's key is ``(request_id, row)``, so the shadow's rows must
not take the primary's, and stripping the suffix pairs the two row by row. The shadow never changes a response and never fails a request: its errors are counted
(``fti_inference_failures_total{variant="shadow"}``) and nothing else; when the queue is full, or
the shadow model is not loaded, the copy is dropped with a counter
(``fti_shadow_dropped_total{model, reason}``). Its only cost to the primary is the CPU its
predictions take, measured by ``benchmarks/serving/shadow_bench.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from fti.errors import FtiError
from fti.serving import protocol
from fti.serving.request_log import InferenceRecord
from fti.serving.routing import SHADOW, internal_name

if TYPE_CHECKING:
    from fti.serving.metrics import ServerMetrics
    from fti.serving.repository import ModelRepository
    from fti.serving.request_log import RequestLogger

log = logging.getLogger("fti.serving")

SHADOW_REQUEST_SUFFIX = "#shadow"
"""Appended to the primary's request id in the shadow's inference-log rows."""


class ShadowQueue:
    """The shadow copies of one server process: a bounded queue and its worker tasks.

    Args:
        repository: Where the shadow models (``"<deployment>/shadow"`` entries) are loaded.
        metrics: The server's metrics; the drop counter is registered there.
        request_logger: Receives the shadow's outputs (None: they are computed and discarded).
        capacity: Most copies waiting; more are dropped.
        workers: Copies predicted at once (the dynamic batcher merges them).
    """

    def __init__(
        self,
        repository: ModelRepository,
        metrics: ServerMetrics,
        request_logger: RequestLogger | None,
        *,
        capacity: int = 1024,
        workers: int = 4,
    ) -> None:
        self._repository = repository
        self._logger = request_logger
        self._queue: asyncio.Queue[tuple[str, Any, str]] = asyncio.Queue(maxsize=capacity)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = Counter(
            "fti_shadow_dropped",
            "Shadow copies of requests dropped: the shadow queue was full, or the shadow not loaded.",
            ("model", "reason"),
            registry=metrics.registry,
        )

    def start(self) -> None:
        """Start the worker tasks (in the server's event loop)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        """Stop the workers; copies still queued are dropped."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def submit(self, deployment: str, payload: Any, request_id: str) -> None:
        """Queue a copy of a request for ``deployment``'s shadow; never waits, never raises."""
        try:
            self._queue.put_nowait((deployment, payload, request_id))
        except asyncio.QueueFull:
            self.dropped.labels(deployment, "queue_full").inc()

    async def _work(self) -> None:
        while True:
            deployment, payload, request_id = await self._queue.get()
            try:
                await self._predict(deployment, payload, request_id)
            except Exception:  # a shadow must never take its worker down
                log.exception("shadow prediction of %s failed", deployment)

    async def _predict(self, deployment: str, payload: Any, request_id: str) -> None:
        repo = self._repository
        try:
            loaded = await repo.acquire(internal_name(deployment, SHADOW))
        except FtiError:
            self.dropped.labels(deployment, "not_loaded").inc()
            return
        counters = loaded.counters
        counters.requests.inc()
        started = time.perf_counter()
        batcher = loaded.batcher
        assert batcher is not None
        predicting = False
        try:
            prepared = loaded.fast_prepare(payload)
            if prepared is None:
                parsed = protocol.parse_infer_request(payload)
                if not loaded.prepare_inline:
                    prepared = await asyncio.to_thread(loaded.prepare, parsed)
                else:
                    prepared = loaded.prepare(parsed)
            predicting = True
            outputs = await batcher.predict(prepared.matrix, prepared.n)
        except FtiError as exc:
            counters.failures.labels(str(exc.http_status)).inc()
            return
        except Exception:  # the shadow model itself raised: counted, never seen by a client
            counters.failures.labels("500").inc()
            return
        finally:
            if not predicting:
                batcher.cancel_expected()
            repo.release(loaded)
        counters.latency.observe(time.perf_counter() - started)
        if self._logger is not None and loaded.spec.log_requests:
            self._logger.log(
                InferenceRecord(
                    deployment,
                    loaded.model_version.name,
                    loaded.version,
                    request_id + SHADOW_REQUEST_SUFFIX,  # the primary's rows keep the plain id
                    datetime.now(UTC),
                    loaded.feature_names,
                    prepared.matrix,
                    outputs,
                    prepared.logged,
                    SHADOW,
                )
            )
