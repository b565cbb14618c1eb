"""Fixtures of the Spark engine tests: frames on the test cluster's session, and a slow DataFrame to
cancel a job midway."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest


def cancel_when(spark: Any, stage_site: str, done_tasks: int = 1, timeout: float = 240) -> threading.Thread:
    """Cancel every running Spark job once a stage whose call site contains ``stage_site`` has
    finished ``done_tasks`` tasks while others still run (so some output exists): "a job killed
    midway". Returns the watching thread (it sets ``thread.cancelled``); set ``thread.stop`` when
    the job is over, so that a watcher that missed it cannot cancel a later test's jobs."""
    context = spark.sparkContext
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout
        tracker = context.statusTracker()
        while time.monotonic() < deadline and not stop.is_set():
            for job in tracker.getActiveJobsIds():
                info = tracker.getJobInfo(job)
                for stage_id in info.stageIds if info else []:
                    stage = tracker.getStageInfo(stage_id)
                    if (
                        stage is not None
                        and stage_site in stage.name
                        and stage.numCompletedTasks >= done_tasks
                        and stage.numActiveTasks > 0
                    ):
                        context.cancelAllJobs()
                        thread.cancelled = True  # type: ignore[attr-defined]
                        return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.cancelled = False  # type: ignore[attr-defined]
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread


@pytest.fixture
def slow_frame(spark_session: Any) -> Callable[[pa.Table, int, float], Any]:
    """``slow(table, partitions, seconds)``: ``table`` as a DataFrame whose every partition takes
    ``seconds`` to compute (a slow feature pipeline)."""

    def make(table: pa.Table, partitions: int, seconds: float) -> Any:
        def sleepy(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            time.sleep(seconds)
            yield from batches

        frame = spark_session.createDataFrame(table).repartition(partitions)
        return frame.mapInArrow(sleepy, frame.schema)

    return make
