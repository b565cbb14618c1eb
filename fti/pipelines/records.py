"""The pipelines domain's catalog records: the only module that touches ``pipelines``,
``pipeline_runs``, ``scheduler_leases``, ``pipeline_cursors`` and ``pipeline_events``
(``fti.storage.metadata.tables.pipelines``).

The pipeline catalog (``project.pipelines``), the scheduler and the executor go through these
functions. Those that take a ``Catalog`` are one transaction each; those that take a
``Connection`` run in the caller's (deploying registers a module's pipelines in one).

Run states move by compare-and-set (:func:`transition` updates a run only in the expected
state), and a run is unique per ``(pipeline, trigger_key, attempt)``, so two processes can never
both start, finish or create the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.errors import NotFoundError
from fti.pipelines.definitions import Signature, trigger_from_dict
from fti.pipelines.pipeline import Pipeline
from fti.pipelines.runs import FINAL_STATES, QUEUED, RETRYABLE, PipelineRun
from fti.pipelines.schedules import Schedule
from fti.storage.metadata.tables import (
    pipeline_cursors,
    pipeline_events,
    pipeline_runs,
    pipelines,
    scheduler_leases,
)

if TYPE_CHECKING:
    from sqlalchemy.sql import Select

    from fti.storage.metadata.base import Catalog, Connection


@dataclass(frozen=True)
class Event:
    """A fired event: its position in the project's event sequence and its payload."""

    id: int
    payload: dict[str, Any] | None


# --- pipelines -------------------------------------------------------------------------------
def _pipeline(row: Any) -> Pipeline:
    m = row._mapping
    return Pipeline(
        id=m["id"],
        name=m["name"],
        kind=m["kind"],
        function=m["function"],
        source_path=m["source_path"],
        source_digest=m["source_digest"],
        schedule=None if m["schedule"] is None else Schedule.from_dict(m["schedule"]),
        trigger=trigger_from_dict(m["trigger"]),
        retries=m["retries"],
        retry_backoff=m["retry_backoff"],
        timeout=m["timeout"],
        concurrency=m["concurrency"],
        missed=m["missed"],
        signature=Signature.from_dict(m["signature"]),
        description=m["description"],
        paused=m["paused"],
        cursor=m["cursor"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        secrets=tuple(m["secrets"] or ()),
        environment=m["environment"],
    )


def list_pipelines(catalog: Catalog, project_id: int) -> list[Pipeline]:
    """Every deployed pipeline of the project, by name."""
    query = select(pipelines).where(pipelines.c.project_id == project_id).order_by(pipelines.c.name)
    with catalog.connect() as conn:
        return [_pipeline(r) for r in conn.execute(query)]


def find_pipeline(catalog: Catalog, project_id: int, name: str) -> Pipeline | None:
    """The deployed pipeline ``name``, or None."""
    query = select(pipelines).where(pipelines.c.project_id == project_id, pipelines.c.name == name)
    with catalog.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _pipeline(row)


def save_pipeline(
    conn: Connection, project_id: int, name: str, definition: dict[str, Any], now: datetime
) -> tuple[int, bool]:
    """Register pipeline ``name`` or update its definition; returns ``(id, trigger changed)``.

    A new pipeline starts unpaused with its schedule counting from ``now``; an update keeps the
    paused state and restarts the count only when the schedule changed. ``trigger changed`` is
    True for a new pipeline too: its event cursor needs (re)setting.
    """
    existing = conn.execute(
        select(pipelines).where(pipelines.c.project_id == project_id, pipelines.c.name == name)
    ).first()
    values = dict(definition)
    if existing is None:
        result = conn.execute(
            insert(pipelines).values(
                project_id=project_id,
                name=name,
                paused=False,
                cursor=now,
                created_at=now,
                updated_at=now,
                **values,
            )
        )
        return int(result.inserted_primary_key[0]), True  # type: ignore[index]
    if existing.schedule != values["schedule"]:
        values["cursor"] = now
    conn.execute(update(pipelines).where(pipelines.c.id == existing.id).values(updated_at=now, **values))
    return int(existing.id), existing.trigger != values["trigger"]


def pause_others(conn: Connection, project_id: int, source_path: str, keep: list[str], now: datetime) -> None:
    """Pause the pipelines deployed from ``source_path`` that are not in ``keep``."""
    conn.execute(
        update(pipelines)
        .where(
            pipelines.c.project_id == project_id,
            pipelines.c.source_path == source_path,
            pipelines.c.name.not_in(keep),
            pipelines.c.paused.is_(False),
        )
        .values(paused=True, updated_at=now)
    )


def set_paused(catalog: Catalog, pipeline_id: int, paused: bool, now: datetime) -> None:
    """Pause or resume a pipeline."""
    with catalog.begin() as conn:
        conn.execute(
            update(pipelines).where(pipelines.c.id == pipeline_id).values(paused=paused, updated_at=now)
        )


# --- runs ------------------------------------------------------------------------------------
def _run(row: Any) -> PipelineRun:
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
        environment=m["environment"],
    )


def _select_runs() -> Select[Any]:
    return select(*pipeline_runs.c, pipelines.c.name.label("pipeline")).join(
        pipelines, pipelines.c.id == pipeline_runs.c.pipeline_id
    )


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
    values = run_values(
        pipeline_id=pipeline_id,
        source_digest=source_digest,
        trigger=trigger,
        now=now,
        trigger_key=trigger_key,
        attempt=attempt,
        retry_of=retry_of,
        params=params,
        window=window,
        event=event,
        not_before=not_before,
        status=status,
        error=error,
    )
    try:
        with catalog.begin() as conn:
            result = conn.execute(insert(pipeline_runs).values(**values))
            return int(result.inserted_primary_key[0])  # type: ignore[index]
    except SqlIntegrityError:
        return None  # another scheduler created this slot's run first


def run_values(
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
) -> dict[str, Any]:
    """The row of a new run (for :func:`create_run` and :func:`fire_schedule`)."""
    return {
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


def fire_schedule(
    catalog: Catalog, pipeline_id: int, old: datetime | None, new: datetime, runs: list[dict[str, Any]]
) -> bool:
    """Move the schedule cursor from ``old`` to ``new`` and create ``runs`` (rows from
    :func:`run_values`) in one transaction: a scheduler that dies midway leaves both undone, so
    its successor fires the same slot. False when another scheduler moved the cursor first."""
    cursor = pipelines.c.cursor
    with catalog.begin() as conn:
        moved = conn.execute(
            update(pipelines)
            .where(pipelines.c.id == pipeline_id, cursor.is_(None) if old is None else cursor == old)
            .values(cursor=new)
        ).rowcount
        if moved != 1:
            return False
        for values in runs:
            try:
                with conn.begin_nested():  # a run that exists already (e.g. after a redeploy) is kept
                    conn.execute(insert(pipeline_runs).values(**values))
            except SqlIntegrityError:
                pass
    return True


def get_run(catalog: Catalog, run_id: int) -> PipelineRun:
    """The run ``run_id``; NotFoundError if there is none."""
    with catalog.connect() as conn:
        row = conn.execute(_select_runs().where(pipeline_runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"pipeline run {run_id} does not exist; list runs with `fti pipelines runs NAME`")
    return _run(row)


def list_runs(
    catalog: Catalog,
    project_id: int,
    *,
    pipeline_id: int | None = None,
    statuses: tuple[str, ...] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[PipelineRun]:
    """Runs of the project (or one pipeline), newest first, skipping the newest ``offset``."""
    query = _select_runs().where(pipelines.c.project_id == project_id)
    if pipeline_id is not None:
        query = query.where(pipeline_runs.c.pipeline_id == pipeline_id)
    if statuses is not None:
        query = query.where(pipeline_runs.c.status.in_(statuses))
    query = query.order_by(pipeline_runs.c.id.desc())
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with catalog.connect() as conn:
        return [_run(r) for r in conn.execute(query)]


def unretried_failures(catalog: Catalog, project_id: int) -> list[PipelineRun]:
    """Failed or timed-out runs whose pipeline allows another attempt that has none: their
    retry was missed (the scheduler that should have queued it died)."""
    retry = pipeline_runs.alias("next_attempt")
    successor = (
        select(retry.c.id)
        .where(
            retry.c.pipeline_id == pipeline_runs.c.pipeline_id,
            retry.c.attempt == pipeline_runs.c.attempt + 1,
            retry.c.retry_of == func.coalesce(pipeline_runs.c.retry_of, pipeline_runs.c.id),
        )
        .exists()
    )
    query = (
        _select_runs()
        .where(
            pipelines.c.project_id == project_id,
            pipeline_runs.c.status.in_(RETRYABLE),
            pipeline_runs.c.attempt <= pipelines.c.retries,
            ~successor,
        )
        .order_by(pipeline_runs.c.id)
    )
    with catalog.connect() as conn:
        return [_run(r) for r in conn.execute(query)]


def due_run_ids(catalog: Catalog, pipeline_ids: list[int], now: datetime) -> list[int]:
    """Ids of the queued runs of these pipelines whose ``not_before`` has come, oldest first."""
    query = (
        select(pipeline_runs.c.id)
        .where(
            pipeline_runs.c.status == QUEUED,
            pipeline_runs.c.not_before <= now,
            pipeline_runs.c.pipeline_id.in_(pipeline_ids),
        )
        .order_by(pipeline_runs.c.id)
    )
    with catalog.connect() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


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
    with catalog.begin() as conn:
        return bool(conn.execute(query.values(**values)).rowcount == 1)


# --- the scheduler's lease -------------------------------------------------------------------
def acquire_lease(catalog: Catalog, project_id: int, holder: str, now: datetime, expires: datetime) -> bool:
    """Renew ``holder``'s lease of the project, or take it when free or expired; False if held."""
    lease = scheduler_leases.c
    with catalog.begin() as conn:
        renewed = conn.execute(
            update(scheduler_leases)
            .where(lease.project_id == project_id, lease.holder == holder)
            .values(expires_at=expires)
        ).rowcount
        if renewed == 1:
            return True
        taken = conn.execute(
            update(scheduler_leases)
            .where(lease.project_id == project_id, lease.expires_at < now)
            .values(holder=holder, acquired_at=now, expires_at=expires)
        ).rowcount
        if taken == 1:
            return True
    try:
        with catalog.begin() as conn:
            conn.execute(
                insert(scheduler_leases).values(
                    project_id=project_id, holder=holder, acquired_at=now, expires_at=expires
                )
            )
        return True
    except SqlIntegrityError:
        return False  # someone else holds a live lease


def release_lease(catalog: Catalog, project_id: int, holder: str, now: datetime) -> None:
    """Let ``holder``'s lease expire at ``now`` (another scheduler can take over at once)."""
    with catalog.begin() as conn:
        conn.execute(
            update(scheduler_leases)
            .where(scheduler_leases.c.project_id == project_id, scheduler_leases.c.holder == holder)
            .values(expires_at=now)
        )


# --- event cursors and events ----------------------------------------------------------------
def cursor_position(catalog: Catalog, pipeline_id: int) -> int:
    """How far the pipeline's trigger has consumed (a commit or event id), created at 0 if unset."""
    with catalog.connect() as conn:
        pos = conn.execute(
            select(pipeline_cursors.c.position).where(pipeline_cursors.c.pipeline_id == pipeline_id)
        ).scalar()
    if pos is None:
        try:
            with catalog.begin() as conn:
                conn.execute(insert(pipeline_cursors).values(pipeline_id=pipeline_id, position=0))
        except SqlIntegrityError:
            return cursor_position(catalog, pipeline_id)
        return 0
    return int(pos)


def advance_cursor(catalog: Catalog, pipeline_id: int, old: int, new: int) -> bool:
    """Move the cursor from ``old`` to ``new``; False when someone else moved it first."""
    cursor = pipeline_cursors.c
    with catalog.begin() as conn:
        moved = conn.execute(
            update(pipeline_cursors)
            .where(cursor.pipeline_id == pipeline_id, cursor.position == old)
            .values(position=new)
        ).rowcount
    return bool(moved == 1)


def advance_cursor_to(catalog: Catalog, pipeline_id: int, position: int) -> None:
    """Move the cursor forward to ``position`` (never back); creates it when unset."""
    cursor_position(catalog, pipeline_id)
    with catalog.begin() as conn:
        conn.execute(
            update(pipeline_cursors)
            .where(pipeline_cursors.c.pipeline_id == pipeline_id, pipeline_cursors.c.position < position)
            .values(position=position)
        )


def reset_cursor(conn: Connection, pipeline_id: int, position: int | None) -> None:
    """Start the pipeline's trigger after ``position`` (None: the pipeline has no trigger)."""
    conn.execute(delete(pipeline_cursors).where(pipeline_cursors.c.pipeline_id == pipeline_id))
    if position is not None:
        conn.execute(insert(pipeline_cursors).values(pipeline_id=pipeline_id, position=position))


def last_event_id(conn: Connection, project_id: int) -> int:
    """The id of the project's newest event (0 if none)."""
    query = select(func.max(pipeline_events.c.id)).where(pipeline_events.c.project_id == project_id)
    return int(conn.execute(query).scalar() or 0)


def add_event(
    catalog: Catalog, project_id: int, name: str, payload: dict[str, Any] | None, now: datetime
) -> int:
    """Record a fired event; returns its id."""
    with catalog.begin() as conn:
        result = conn.execute(
            insert(pipeline_events).values(project_id=project_id, name=name, payload=payload, created_at=now)
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def events_after(catalog: Catalog, project_id: int, name: str, position: int) -> list[Event]:
    """Events called ``name`` after ``position``, oldest first."""
    query = (
        select(pipeline_events.c.id, pipeline_events.c.payload)
        .where(
            pipeline_events.c.project_id == project_id,
            pipeline_events.c.name == name,
            pipeline_events.c.id > position,
        )
        .order_by(pipeline_events.c.id)
    )
    with catalog.connect() as conn:
        return [Event(int(r.id), r.payload) for r in conn.execute(query)]
