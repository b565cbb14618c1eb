"""Pipeline runs: the record of one attempt, and the states it moves through.

States: ``queued -> running -> succeeded | failed | timed_out | cancelled`` (a queued run may also
go straight to ``cancelled``). Every transition is a conditional UPDATE on the current state
(``fti.pipelines.records.transition``), so two processes can never both start or both finish the
same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

QUEUED, RUNNING = "queued", "running"
SUCCEEDED, FAILED, TIMED_OUT, CANCELLED = "succeeded", "failed", "timed_out", "cancelled"
FINAL_STATES = (SUCCEEDED, FAILED, TIMED_OUT, CANCELLED)
RETRYABLE = (FAILED, TIMED_OUT)


@dataclass(frozen=True)
class PipelineRun:
    """One attempt of one pipeline run.

    Attributes:
        id: Run id (``fti pipelines logs ID``).
        pipeline: The pipeline's name.
        status: queued, running, succeeded, failed, timed_out or cancelled.
        trigger: manual, schedule, retry, new_data, event or backfill.
        attempt: 1 for the first attempt, 2 for the first retry...
        retry_of: The id of the first attempt, for retries.
        params: Keyword arguments passed to the function.
        window_start: ``start`` passed to the function (tz-aware UTC), or None.
        window_end: ``end`` passed to the function, or None.
        exit_code: The process exit status (negative: killed by that signal).
        error: Why the run did not succeed, in one line.
        log_keys: Artifact keys of the captured ``stdout`` and ``stderr``.
        environment: The isolated environment it ran in (``packages``: lineage), or None.
    """

    id: int
    pipeline_id: int
    pipeline: str
    status: str
    trigger: str
    trigger_key: str | None
    attempt: int
    retry_of: int | None
    params: dict[str, Any]
    window_start: datetime | None
    window_end: datetime | None
    event: dict[str, Any] | None
    source_digest: str
    queued_at: datetime
    not_before: datetime
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    error: str | None
    owner: str | None
    host: str | None
    pid: int | None
    log_keys: dict[str, str] | None
    environment: dict[str, Any] | None = None
    """The isolated environment the run ran in: its digest, Python version and resolved packages."""

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None while not finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "status": self.status,
            "trigger": self.trigger,
            "attempt": self.attempt,
            "retry_of": self.retry_of,
            "params": self.params,
            "start": iso(self.window_start),
            "end": iso(self.window_end),
            "event": self.event,
            "queued_at": iso(self.queued_at),
            "not_before": iso(self.not_before),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration": self.duration,
            "exit_code": self.exit_code,
            "error": self.error,
            "log_keys": self.log_keys,
            "environment": self.environment,
        }
