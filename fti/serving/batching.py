"""Dynamic batching: concurrent requests to one model version merged into one predict call.

One :class:`Batcher` per loaded model version. Requests enqueue their input matrix and await a
future; a single collector task takes the first waiting request, keeps collecting while more
requests for the model are in flight (up to ``max_batch_size`` rows or ``max_batch_delay_ms``),
runs the predict function in a thread so the event loop keeps parsing requests, and splits the
outputs back by row in request order. A lone request is never delayed: the collector only waits
when other requests for the model are already being parsed.

The queue is bounded (a full queue answers 503 with ``Retry-After``) and every request has a
timeout (504); a request that timed out leaves the count of waiting requests at once, so the next
burst is queued rather than refused while nothing waits. A predict call that runs longer than the
timeout makes the batcher report itself stuck (:meth:`Batcher.stuck_for`): readiness says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fti.errors import FtiError

if TYPE_CHECKING:
    import numpy as np

PredictFn = Callable[[Any], dict[str, "np.ndarray"]]


class QueueFullError(FtiError):
    """The model's request queue is full: retry after ``retry_after`` seconds."""

    code = "overloaded"
    http_status = 503
    retry_after = 1


class InferenceTimeoutError(FtiError):
    """The request did not get its prediction within the timeout."""

    code = "timeout"
    http_status = 504


@dataclass
class _Item:
    rows: Any  # a 2-D numpy array (or DataFrame) with the request's rows
    n: int
    future: asyncio.Future[dict[str, Any]]
    enqueued: float = field(default_factory=time.perf_counter)
    waiting: bool = True  # in the queue and counted there (not taken by the collector, not expired)


@dataclass
class BatchStats:
    """What one predict call did, for metrics."""

    size: int
    requests: int
    queue_seconds: list[float]


class Batcher:
    """Merge concurrent predict calls of one model version.

    Callers announce a request with :meth:`expect` as soon as it is routed to the model (before
    its body is parsed) and then call :meth:`predict` (or :meth:`cancel_expected` if it fails
    before that). The collector waits for more rows only while announced requests are still on
    their way, so a lone request is never delayed and a batch is sent as soon as every expected
    request has joined it.

    Args:
        predict: The scorer's ``predict(X) -> {output: array}`` (runs in a worker thread).
        max_batch_size: Most rows per predict call (1 disables batching).
        max_batch_delay_ms: Longest a collected batch waits for more requests.
        max_queue_size: Most requests waiting; more are refused with ``QueueFullError``.
        timeout_s: Longest a request waits for its prediction (``InferenceTimeoutError``).
        on_batch: Called after each predict call with its :class:`BatchStats`.
    """

    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int = 32,
        max_batch_delay_ms: float = 2.0,
        max_queue_size: int = 1024,
        timeout_s: float = 10.0,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_batch_delay = max(0.0, float(max_batch_delay_ms)) / 1000.0
        self.max_queue_size = max(1, int(max_queue_size))
        self.timeout_s = float(timeout_s)
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()  # may still hold expired items: the collector skips them
        self._waiting = 0  # items of the queue still waiting for a prediction
        self._queued_rows = 0  # their rows
        self._predicting_since: float | None = None  # when the running predict call started
        self._waiter: asyncio.Future[None] | None = None
        self._wake_rows = 1  # wake the sleeping collector once this many rows are queued
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fti-predict")
        self.inflight = 0  # requests for this model between routing and response
        self.arriving = 0  # announced requests that have not reached predict() yet
        self._closed = False

    # --- request side ---------------------------------------------------------------------
    def expect(self) -> None:
        """A request was routed to this model: it counts in flight and as arriving."""
        self.inflight += 1
        self.arriving += 1

    def cancel_expected(self) -> None:
        """An announced request failed before :meth:`predict` (e.g. a 400)."""
        self.arriving -= 1
        self._wake_if_ready()

    def done(self) -> None:
        """An announced request has its response (or error)."""
        self.inflight -= 1

    async def predict(self, rows: Any, n: int) -> dict[str, Any]:
        """Predict ``n`` rows of an announced request; returns its slice of every output."""
        self.arriving -= 1
        if self._closed:
            from fti.errors import ModelNotReadyError

            raise ModelNotReadyError("the model version was unloaded; retry the request")
        if self._waiting >= self.max_queue_size:
            self._wake_if_ready()
            raise QueueFullError(
                f"the model's queue is full ({self.max_queue_size} requests waiting); retry shortly",
            )
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        loop = asyncio.get_running_loop()
        item = _Item(rows, n, loop.create_future())
        self._queue.append(item)
        self._waiting += 1
        self._queued_rows += n
        self._wake_if_ready()
        # a timer instead of asyncio.wait_for: no extra task per request on the hot path
        timer = loop.call_later(self.timeout_s, self._expire, item)
        try:
            return await item.future
        finally:
            timer.cancel()

    def _wake_if_ready(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._queued_rows >= self._wake_rows or (self._waiting and self.arriving <= 0):
            waiter.set_result(None)

    def _expire(self, item: _Item) -> None:
        if item.waiting:  # it stops counting now; the collector drops it when it gets there
            item.waiting = False
            item.rows = None  # a hung predict must not keep every expired request's rows alive
            self._waiting -= 1
            self._queued_rows -= item.n
        if not item.future.done():  # a late result is dropped
            item.future.set_exception(
                InferenceTimeoutError(
                    f"no prediction within {self.timeout_s:g} s (the model is overloaded or slow); retry later"
                )
            )

    @property
    def queued(self) -> int:
        """Requests waiting for a prediction (timed-out ones do not count)."""
        return self._waiting

    def stuck_for(self) -> float | None:
        """Seconds the running predict call has taken, if that is longer than the request
        timeout (every request of its batch already got 504), else None."""
        since = self._predicting_since
        if since is None:
            return None
        took = time.perf_counter() - since
        return took if took > self.timeout_s else None

    @property
    def idle(self) -> bool:
        return self._waiting == 0 and self.inflight == 0

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until no request is queued or in flight (used before unloading)."""
        deadline = time.monotonic() + timeout_s
        while not self.idle and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        """Stop the collector after the queue is empty; later calls fail with 503."""
        await self.drain()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False)

    # --- collector ------------------------------------------------------------------------
    async def _sleep(self, loop: asyncio.AbstractEventLoop, wake_rows: int, timeout: float | None) -> None:
        """Sleep until ``wake_rows`` rows are queued, nothing more is arriving, or ``timeout``."""
        self._wake_rows = wake_rows
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _resolve, waiter)
        self._wake_if_ready()
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                await self._sleep(loop, 1, None)
            batch = await self._collect(loop)
            if batch:
                await self._execute(loop, batch)

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> list[_Item]:
        batch: list[_Item] = []
        rows = 0
        deadline = time.perf_counter() + self.max_batch_delay
        while True:
            while self._queue:
                item = self._queue[0]
                if not item.waiting or item.future.done():  # timed out while waiting: counted out
                    self._queue.popleft()
                    continue
                if batch and rows + item.n > self.max_batch_size:
                    return batch
                self._queue.popleft()
                item.waiting = False
                self._waiting -= 1
                self._queued_rows -= item.n
                batch.append(item)
                rows += item.n
            remaining = deadline - time.perf_counter()
            # wait for more only while announced requests for this model are on their way
            if rows >= self.max_batch_size or self.arriving <= 0 or remaining <= 0:
                return batch
            await self._sleep(loop, self.max_batch_size - rows, remaining)
            if time.perf_counter() >= deadline and not self._queue:
                return batch

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        started = time.perf_counter()
        queue_seconds = [started - item.enqueued for item in batch]
        self._predicting_since = started
        try:
            matrix = batch[0].rows if len(batch) == 1 else _concat([item.rows for item in batch])
            outputs = await loop.run_in_executor(self._executor, self._predict, matrix)
        except Exception as exc:  # the model failed: every request of the batch gets the error
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self._predicting_since = None
        offset = 0
        for item in batch:
            end = offset + item.n
            if not item.future.done():
                item.future.set_result({k: v[offset:end] for k, v in outputs.items()})
            offset = end
        if self._on_batch is not None:
            self._on_batch(BatchStats(offset, len(batch), queue_seconds))


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _concat(parts: list[Any]) -> Any:
    import numpy as np

    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts, axis=0)
    import pandas as pd

    return pd.concat(parts, ignore_index=True)
