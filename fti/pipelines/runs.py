"""Pipeline run records in the catalog and their state transitions.

States: ``queued -> running -> succeeded | failed | timed_out | cancelled`` (a queued run may also
go straight to ``cancelled``). Every transition is a conditional UPDATE on the current state, so
two processes can never both start or both finish the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.errors import NotFoundError
from fti.storage.metadata.tables import pipeline_runs, pipelines

if TYPE_CHECKING:
    from fti.storage.metadata.base import Catalog

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
        }


_COLUMNS = [*pipeline_runs.c, pipelines.c.name.label("pipeline")]


def _record(row: Any) -> PipelineRun:
    m = row._mapping
    return PipelineRun(
        id=m["id"],
        pipeline_id=m["pipeline_id"],
        pipeline=m["pipeline"],
        status=m["status"],
        trigger=m["trigger"],
        trigger_key=m["trigger_key"],
        attempt=m["attempt"],
        retry_of=m["retry_of"],
        params=dict(m["params"] or {}),
        window_start=m["window_start"],
        window_end=m["window_end"],
        event=m["event"],
        source_digest=m["source_digest"],
        queued_at=m["queued_at"],
        not_before=m["not_before"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        exit_code=m["exit_code"],
        error=m["error"],
        owner=m["owner"],
        host=m["host"],
        pid=m["pid"],
        log_keys=m["log_keys"],
    )


def _select() -> Any:
    return select(*_COLUMNS).join(pipelines, pipelines.c.id == pipeline_runs.c.pipeline_id)


def create_run(
    catalog: Catalog,
    *,
    pipeline_id: int,
    source_digest: str,
    trigger: str,
    now: datetime,
    trigger_key: str | None = None,
    attempt: int = 1,
    retry_of: int | None = None,
    params: dict[str, Any] | None = None,
    window: tuple[datetime, datetime] | None = None,
    event: dict[str, Any] | None = None,
    not_before: datetime | None = None,
    status: str = QUEUED,
    error: str | None = None,
) -> int | None:
    """Insert a run; returns its id, or None when ``(trigger_key, attempt)`` already has one."""
    values = {
        "pipeline_id": pipeline_id,
        "status": status,
        "trigger": trigger,
        "trigger_key": trigger_key,
        "attempt": attempt,
        "retry_of": retry_of,
        "params": params or {},
        "window_start": window[0] if window else None,
        "window_end": window[1] if window else None,
        "event": event,
        "source_digest": source_digest,
        "queued_at": now,
        "not_before": not_before or now,
        "error": error,
        "finished_at": now if status in FINAL_STATES else None,
    }
    try:
        with catalog.engine.begin() as conn:
            result = conn.execute(insert(pipeline_runs).values(**values))
            return int(result.inserted_primary_key[0])  # type: ignore[index]
    except SqlIntegrityError:
        return None  # another scheduler created this slot's run first


def get_run(catalog: Catalog, run_id: int) -> PipelineRun:
    """The run ``run_id``; NotFoundError if there is none."""
    with catalog.engine.connect() as conn:
        row = conn.execute(_select().where(pipeline_runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"pipeline run {run_id} does not exist; list runs with `fti pipelines runs NAME`")
    return _record(row)


def list_runs(
    catalog: Catalog,
    project_id: int,
    *,
    pipeline_id: int | None = None,
    statuses: tuple[str, ...] | None = None,
    limit: int | None = None,
) -> list[PipelineRun]:
    """Runs of the project (or one pipeline), newest first."""
    query = _select().where(pipelines.c.project_id == project_id)
    if pipeline_id is not None:
        query = query.where(pipeline_runs.c.pipeline_id == pipeline_id)
    if statuses is not None:
        query = query.where(pipeline_runs.c.status.in_(statuses))
    query = query.order_by(pipeline_runs.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with catalog.engine.connect() as conn:
        return [_record(r) for r in conn.execute(query)]


def transition(
    catalog: Catalog,
    run_id: int,
    *,
    from_states: tuple[str, ...],
    owned_by: str | None = None,
    **values: Any,
) -> bool:
    """Update run ``run_id`` only if it is in one of ``from_states`` (and owned by ``owned_by``)."""
    query = update(pipeline_runs).where(pipeline_runs.c.id == run_id, pipeline_runs.c.status.in_(from_states))
    if owned_by is not None:
        query = query.where(pipeline_runs.c.owner == owned_by)
    with catalog.engine.begin() as conn:
        return bool(conn.execute(query.values(**values)).rowcount == 1)
