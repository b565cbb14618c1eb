"""Dynamic batching: merged predict calls, order preserved, bounded queue and timeouts."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from fti.serving.batching import Batcher, BatchStats, InferenceTimeoutError, QueueFullError


def _double(calls: list[int]) -> Any:
    def predict(X: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(len(X))
        time.sleep(0.005)
        return {"y": X[:, 0] * 2}

    return predict


def test_concurrent_requests_are_merged_and_split_back_in_order() -> None:
    calls: list[int] = []
    stats: list[BatchStats] = []

    async def main() -> list[Any]:
        batcher = Batcher(_double(calls), max_batch_size=64, max_batch_delay_ms=50, on_batch=stats.append)
        for _ in range(40):  # forty requests are on their way
            batcher.expect()

        async def one(i: int) -> Any:
            await asyncio.sleep(0.001 * (i % 5))  # arriving over a few milliseconds
            out = await batcher.predict(np.array([[float(i)], [float(i) + 0.5]]), 2)
            batcher.done()
            return out

        results = await asyncio.gather(*(one(i) for i in range(40)))
        await batcher.close()
        return results

    results = asyncio.run(main())
    for i, out in enumerate(results):
        assert out["y"].tolist() == [2.0 * i, 2.0 * i + 1.0]
    assert max(calls) > 2  # merged
    assert sum(calls) == 80
    assert all(c <= 64 for c in calls)
    assert sum(s.requests for s in stats) == 40


def test_a_lone_request_is_not_delayed() -> None:
    calls: list[int] = []

    async def main() -> float:
        batcher = Batcher(_double(calls), max_batch_size=64, max_batch_delay_ms=2000)
        started = time.perf_counter()
        await batcher.predict(np.array([[1.0]]), 1)
        took = time.perf_counter() - started
        await batcher.close()
        return took

    assert asyncio.run(main()) < 0.5


def test_full_queue_is_refused_and_slow_predictions_time_out() -> None:
    gate = threading.Event()

    def blocked(X: np.ndarray) -> dict[str, np.ndarray]:
        gate.wait(5)
        return {"y": X[:, 0]}

    async def main() -> None:
        batcher = Batcher(blocked, max_batch_size=1, max_queue_size=2, timeout_s=0.3)
        first = asyncio.ensure_future(batcher.predict(np.array([[1.0]]), 1))
        await asyncio.sleep(0.05)  # the first one is being predicted (blocked)
        waiting = [asyncio.ensure_future(batcher.predict(np.array([[1.0]]), 1)) for _ in range(2)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError, match="queue is full"):
            await batcher.predict(np.array([[1.0]]), 1)
        with pytest.raises(InferenceTimeoutError, match="no prediction within"):
            await first
        for task in waiting:
            with pytest.raises(InferenceTimeoutError):
                await task
        gate.set()
        await batcher.close()

    asyncio.run(main())


def test_model_errors_reach_every_request_of_the_batch() -> None:
    def broken(X: np.ndarray) -> dict[str, np.ndarray]:
        raise RuntimeError("model exploded")

    async def main() -> None:
        batcher = Batcher(broken)
        with pytest.raises(RuntimeError, match="model exploded"):
            await batcher.predict(np.array([[1.0]]), 1)
        await batcher.close()

    asyncio.run(main())


def test_a_batch_leaves_as_soon_as_every_announced_request_joined() -> None:
    calls: list[int] = []

    async def main() -> float:
        batcher = Batcher(_double(calls), max_batch_size=64, max_batch_delay_ms=5000)
        for _ in range(4):
            batcher.expect()
        started = time.perf_counter()

        async def one(i: int) -> Any:
            await asyncio.sleep(0.01 * i)
            try:
                if i == 3:  # this one fails validation before predicting
                    batcher.cancel_expected()
                    return None
                return await batcher.predict(np.array([[float(i)]]), 1)
            finally:
                batcher.done()

        results = await asyncio.gather(*(one(i) for i in range(4)))
        took = time.perf_counter() - started
        assert [r["y"].tolist() for r in results[:3]] == [[0.0], [2.0], [4.0]]
        await batcher.close()
        return took

    assert asyncio.run(main()) < 1.0  # not the 5 s delay
    assert calls == [3]


def test_timed_out_requests_stop_counting_as_queued_and_a_stuck_predict_is_reported() -> None:
    """Issue 19 item 18: requests that got their 504 leave the queue at once (the next burst is
    queued, not refused with 503 while nothing waits), and a predict call running longer than the
    timeout makes the batcher report itself stuck until it returns."""
    gate = threading.Event()

    def blocked(X: np.ndarray) -> dict[str, np.ndarray]:
        gate.wait(10)
        return {"y": X[:, 0]}

    async def main() -> None:
        batcher = Batcher(blocked, max_batch_size=1, max_queue_size=2, timeout_s=0.5)
        first = asyncio.ensure_future(batcher.predict(np.array([[1.0]]), 1))
        await asyncio.sleep(
            0.05
        )  # being predicted: the predict call hangs (the timeout leaves room for a loaded machine)
        assert batcher.stuck_for() is None  # not longer than the timeout yet
        burst = [asyncio.ensure_future(batcher.predict(np.array([[2.0]]), 1)) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert batcher.queued == 2
        for task in (first, *burst):
            with pytest.raises(InferenceTimeoutError):
                await task
        assert batcher.queued == 0  # timed out: nothing is waiting any more
        stuck = batcher.stuck_for()
        assert stuck is not None and stuck > 0.5
        # the next burst is queued (and times out while the predict hangs), never refused as full
        again = [asyncio.ensure_future(batcher.predict(np.array([[3.0]]), 1)) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert batcher.queued == 2
        gate.set()  # the predict returns: the queued requests are answered
        results = await asyncio.gather(*again)
        assert [r["y"].tolist() for r in results] == [[3.0], [3.0]]
        assert batcher.stuck_for() is None
        await batcher.close()

    asyncio.run(main())
