"""Deployed pipelines in the catalog: deploy, list, show, pause, resume, run now, backfill, logs.

Get it as ``project.pipelines``. Deploying imports a module, validates every pipeline it declares
and registers them all in one transaction (a module that fails to import registers nothing).
Manual runs and backfills execute synchronously, one attempt each, through the same executor as
the scheduler.
"""

from __future__ import annotations

import builtins
import itertools
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from fti._names import check_name
from fti.errors import NotFoundError, ValidationError
from fti.features import records as feature_records
from fti.pipelines import runs as run_records
from fti.pipelines.definitions import (
    WINDOW_PARAMS,
    OnNewData,
    PipelineSpec,
    Signature,
    Trigger,
    load_module,
    trigger_from_dict,
)
from fti.pipelines.schedules import Schedule, parse_duration, split_window
from fti.storage.metadata.tables import (
    pipeline_cursors,
    pipeline_events,
    pipelines,
)
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from fti.pipelines.runs import PipelineRun
    from fti.project import Project


@dataclass(frozen=True)
class Pipeline:
    """A deployed pipeline (see :mod:`fti.pipelines.definitions` for the meaning of each policy)."""

    id: int
    name: str
    kind: str
    function: str
    source_path: str
    source_digest: str
    schedule: Schedule | None
    trigger: Trigger | None
    retries: int
    retry_backoff: float
    timeout: float | None
    concurrency: str
    missed: str
    signature: Signature
    description: str
    paused: bool
    cursor: datetime | None
    created_at: datetime
    updated_at: datetime
    secrets: tuple[str, ...] = ()
    """Names of the secrets a run receives."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "function": self.function,
            "source_path": self.source_path,
            "source_digest": self.source_digest,
            "schedule": None if self.schedule is None else self.schedule.to_dict(),
            "trigger": None if self.trigger is None else self.trigger.to_dict(),
            "retries": self.retries,
            "retry_backoff": self.retry_backoff,
            "timeout": self.timeout,
            "concurrency": self.concurrency,
            "missed": self.missed,
            "parameters": self.signature.to_dict(),
            "description": self.description,
            "paused": self.paused,
            "secrets": list(self.secrets),
            "next_run": None if self.next_run is None else self.next_run.isoformat(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @property
    def next_run(self) -> datetime | None:
        """The next scheduled fire time (None when unscheduled or paused)."""
        if self.schedule is None or self.paused:
            return None
        return self.schedule.next_after(self.cursor or utcnow())

    def check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validate run parameters against the function's signature."""
        if not isinstance(params, dict):
            raise ValidationError(f"params must be a dict of name -> value, got {params!r}")
        sig = self.signature
        for key in params:
            if not isinstance(key, str) or not key.isidentifier():
                raise ValidationError(f"invalid parameter name {key!r}: use a Python identifier")
            if key in (*WINDOW_PARAMS, "event"):
                raise ValidationError(
                    f"parameter {key!r} is set by fti; pass the window with start=/end= (--start/--end)"
                )
            if key not in sig.params and not sig.var_keyword:
                accepted = ", ".join(p for p in sig.params if p not in (*WINDOW_PARAMS, "event")) or "none"
                raise ValidationError(
                    f"pipeline {self.name!r} has no parameter {key!r} (accepted: {accepted})"
                )
        missing = [p for p in sig.required if p not in params and p != "event"]
        if missing:
            raise ValidationError(
                f"pipeline {self.name!r} needs parameter(s) {', '.join(missing)}: pass --param k=v"
            )
        try:
            json.dumps(params)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"params must be JSON-serialisable: {exc}") from exc
        return dict(params)


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
    )


def _definition(spec: PipelineSpec, source: str, digest: str) -> dict[str, Any]:
    return {
        "kind": spec.kind,
        "function": spec.function,
        "source_path": source,
        "source_digest": digest,
        "schedule": None if spec.schedule is None else spec.schedule.to_dict(),
        "trigger": None if spec.trigger is None else spec.trigger.to_dict(),
        "retries": spec.retries,
        "retry_backoff": spec.retry_backoff,
        "timeout": spec.timeout,
        "concurrency": spec.concurrency,
        "missed": spec.missed,
        "signature": spec.signature.to_dict(),
        "description": spec.description,
        "secrets": list(spec.secrets),
    }


class PipelineCatalog:
    """The deployed pipelines of one project. Get it as ``project.pipelines``."""

    def __init__(self, project: Project) -> None:
        self._project = project

    @property
    def _catalog(self) -> Any:
        return self._project.backends.catalog

    # --- definitions ------------------------------------------------------------------------
    def deploy(self, path: str | Path, *, now: datetime | None = None) -> list[Pipeline]:
        """Import the module at ``path`` and register (or update) every pipeline it declares.

        Schedules start counting from ``now``: no fire time before the deploy runs. Redeploying
        keeps a pipeline's paused state and run history; a changed schedule restarts its count.
        Pipelines deployed earlier from the same file that it no longer declares are paused
        (their history stays; they would otherwise fail on the changed file).

        Raises:
            NotFoundError: no such file.
            ValidationError: the module fails to import (message with traceback), declares no
                pipeline, or a declaration is invalid. Nothing is registered then.
        """
        now = now or utcnow()
        _, digest, specs = load_module(path)
        source = str(Path(path).expanduser().resolve())
        if not specs:
            raise ValidationError(
                f"{source!r} declares no pipeline: decorate a function with @fti.feature_pipeline(...), "
                "@fti.training_pipeline(...) or @fti.inference_pipeline(...)"
            )
        with self._catalog.engine.begin() as conn:
            for spec in specs:
                values = _definition(spec, source, digest)
                existing = conn.execute(
                    select(pipelines).where(
                        pipelines.c.project_id == self._project.id, pipelines.c.name == spec.name
                    )
                ).first()
                if existing is None:
                    result = conn.execute(
                        insert(pipelines).values(
                            project_id=self._project.id,
                            name=spec.name,
                            paused=False,
                            cursor=now,
                            created_at=now,
                            updated_at=now,
                            **values,
                        )
                    )
                    pipeline_id = int(result.inserted_primary_key[0])  # type: ignore[index]
                else:
                    pipeline_id = existing.id
                    if existing.schedule != values["schedule"]:
                        values["cursor"] = now
                    conn.execute(
                        update(pipelines)
                        .where(pipelines.c.id == pipeline_id)
                        .values(updated_at=now, **values)
                    )
                if existing is None or existing.trigger != values["trigger"]:
                    self._reset_cursor(conn, pipeline_id, spec.trigger)
            conn.execute(
                update(pipelines)
                .where(
                    pipelines.c.project_id == self._project.id,
                    pipelines.c.source_path == source,
                    pipelines.c.name.not_in([spec.name for spec in specs]),
                    pipelines.c.paused.is_(False),
                )
                .values(paused=True, updated_at=now)
            )
        return [self.get(spec.name) for spec in specs]

    def _reset_cursor(self, conn: Any, pipeline_id: int, trigger: Trigger | None) -> None:
        """Event triggers start after what exists at deploy time."""
        from sqlalchemy import delete

        conn.execute(delete(pipeline_cursors).where(pipeline_cursors.c.pipeline_id == pipeline_id))
        if trigger is None:
            return
        if isinstance(trigger, OnNewData):
            position = feature_records.last_commit_position(conn, self._project.id, trigger.feature_group)
        else:
            query = select(func.max(pipeline_events.c.id)).where(
                pipeline_events.c.project_id == self._project.id
            )
            position = conn.execute(query).scalar() or 0
        conn.execute(insert(pipeline_cursors).values(pipeline_id=pipeline_id, position=int(position)))

    def list(self) -> builtins.list[Pipeline]:
        """Every deployed pipeline of the project, by name."""
        query = select(pipelines).where(pipelines.c.project_id == self._project.id).order_by(pipelines.c.name)
        with self._catalog.engine.connect() as conn:
            return [_pipeline(r) for r in conn.execute(query)]

    def get(self, name: str) -> Pipeline:
        """The deployed pipeline ``name``; NotFoundError (listing the deployed ones) otherwise."""
        check_name(name, "pipeline")
        query = select(pipelines).where(pipelines.c.project_id == self._project.id, pipelines.c.name == name)
        with self._catalog.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            known = ", ".join(p.name for p in self.list()) or "none deployed yet"
            raise NotFoundError(
                f"pipeline {name!r} does not exist in project {self._project.name!r} (deployed: {known}); "
                "deploy it with `fti pipelines deploy path/to/module.py`"
            )
        return _pipeline(row)

    def pause(self, name: str) -> Pipeline:
        """Stop scheduling and triggering ``name`` (running runs finish; manual runs still work)."""
        return self._set_paused(name, True)

    def resume(self, name: str, *, now: datetime | None = None) -> Pipeline:
        """Resume ``name``; fire times missed while paused follow its missed-run policy."""
        return self._set_paused(name, False, now)

    def _set_paused(self, name: str, paused: bool, now: datetime | None = None) -> Pipeline:
        pipeline = self.get(name)
        with self._catalog.engine.begin() as conn:
            conn.execute(
                update(pipelines)
                .where(pipelines.c.id == pipeline.id)
                .values(paused=paused, updated_at=now or utcnow())
            )
        return self.get(name)

    # --- runs ---------------------------------------------------------------------------------
    def runs(self, name: str | None = None, *, limit: int | None = 50) -> builtins.list[PipelineRun]:
        """Runs of pipeline ``name`` (or of every pipeline), newest first."""
        pipeline_id = None if name is None else self.get(name).id
        return run_records.list_runs(self._catalog, self._project.id, pipeline_id=pipeline_id, limit=limit)

    def get_run(self, run_id: int) -> PipelineRun:
        """One run by id."""
        run = run_records.get_run(self._catalog, run_id)
        if run.pipeline_id not in {p.id for p in self.list()}:
            raise NotFoundError(f"pipeline run {run_id} does not exist in project {self._project.name!r}")
        return run

    def logs(self, run_id: int) -> dict[str, str]:
        """The captured ``stdout`` and ``stderr`` of a finished run."""
        run = self.get_run(run_id)
        if not run.log_keys:
            raise NotFoundError(
                f"run {run_id} has no logs yet (status {run.status}); logs are stored when the run ends"
            )
        artifacts = self._project.backends.artifacts
        return {
            stream: artifacts.get_bytes(key).decode("utf-8", "replace")
            for stream, key in sorted(run.log_keys.items())
        }

    def run(
        self,
        name: str,
        *,
        params: dict[str, Any] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        trigger: str = "manual",
    ) -> PipelineRun:
        """Run ``name`` now, synchronously, as one attempt; returns the finished run.

        Window pipelines get ``start``/``end``; when omitted, a scheduled pipeline gets the window
        that closed most recently. The pipeline's timeout applies; its retries and overlap policy
        do not (a manual run is one explicit attempt, also for paused pipelines). Ctrl-C cancels it.

        Raises:
            NotFoundError: unknown pipeline.
            ValidationError: unknown or missing parameters, or a bad window.
        """
        pipeline = self.get(name)
        checked = pipeline.check_params(params or {})
        window = self._window(pipeline, start, end)
        now = utcnow()
        run_id = run_records.create_run(
            self._catalog,
            pipeline_id=pipeline.id,
            source_digest=pipeline.source_digest,
            trigger=trigger,
            now=now,
            params=checked,
            window=window,
        )
        assert run_id is not None
        return self._execute(pipeline, run_id)

    def _window(
        self, pipeline: Pipeline, start: datetime | None, end: datetime | None
    ) -> tuple[datetime, datetime] | None:
        if start is None and end is None:
            if pipeline.schedule is None:
                if pipeline.signature.window_required:
                    raise ValidationError(
                        f"pipeline {pipeline.name!r} needs a window: pass start and end (--start/--end)"
                    )
                return None
            return pipeline.schedule.window(pipeline.schedule.latest_at_or_before(utcnow()))
        if start is None or end is None:
            raise ValidationError("pass both start and end (or neither)")
        if not pipeline.signature.takes_window:
            raise ValidationError(
                f"pipeline {pipeline.name!r} does not take a window: its function has no start/end parameters"
            )
        for label, value in (("start", start), ("end", end)):
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValidationError(f"{label} must be a timezone-aware datetime, got {value!r}")
        if end <= start:
            raise ValidationError(
                f"end {end.isoformat()} must be after start {start.isoformat()}: swap them or fix the dates"
            )
        return start.astimezone(UTC), end.astimezone(UTC)

    def _execute(self, pipeline: Pipeline, run_id: int) -> PipelineRun:
        from fti.pipelines import executor

        owner = f"cli:{executor.HOST}:{os.getpid()}"
        run = run_records.get_run(self._catalog, run_id)
        proc = executor.launch(self._project, pipeline, run, owner=owner, now=utcnow())
        if proc is not None:
            try:
                while proc.poll() is None:
                    if proc.expired():
                        proc.kill(
                            run_records.TIMED_OUT,
                            f"timed out after {pipeline.timeout:g}s; its process group was killed",
                        )
                        break
                    time.sleep(0.02)
            except KeyboardInterrupt:
                proc.kill(run_records.CANCELLED, "cancelled by the user (Ctrl-C)")
                executor.finish(self._project, proc, owner=owner, now=utcnow())
                raise
            executor.finish(self._project, proc, owner=owner, now=utcnow())
        return run_records.get_run(self._catalog, run_id)

    def backfill(
        self,
        name: str,
        start: datetime,
        end: datetime,
        *,
        step: str | timedelta | None = None,
        params: dict[str, Any] | None = None,
    ) -> builtins.list[PipelineRun]:
        """Run a window pipeline over ``[start, end)`` in consecutive windows, oldest first.

        Args:
            name: A pipeline whose function takes ``start`` and ``end``.
            start: Start of the range (tz-aware).
            end: End of the range (tz-aware), after ``start``.
            step: Window length (``"1h"``); default: the schedule's fire times, else one window.
            params: Extra parameters for every run.
        """
        pipeline = self.get(name)
        if not pipeline.signature.takes_window:
            raise ValidationError(
                f"pipeline {name!r} cannot be backfilled: its function has no start/end parameters"
            )
        checked = pipeline.check_params(params or {})
        for label, value in (("start", start), ("end", end)):
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValidationError(f"backfill {label} must be a timezone-aware datetime, got {value!r}")
        if end <= start:
            raise ValidationError(
                f"backfill end {end.isoformat()} is not after start {start.isoformat()}: swap them or fix the dates"
            )
        if step is not None:
            windows = split_window(start, end, parse_duration(step, "step"))
        elif pipeline.schedule is not None:
            windows = _schedule_windows(pipeline.schedule, start, end)
        else:
            windows = [(start, end)]
        results = []
        for window in windows:
            key = f"backfill:{window[0].isoformat()}/{window[1].isoformat()}:{utcnow().timestamp()}"
            run_id = run_records.create_run(
                self._catalog,
                pipeline_id=pipeline.id,
                source_digest=pipeline.source_digest,
                trigger="backfill",
                trigger_key=key,
                now=utcnow(),
                params=checked,
                window=window,
            )
            assert run_id is not None
            results.append(self._execute(pipeline, run_id))
        return results

    # --- events -------------------------------------------------------------------------------
    def fire_event(self, event: str, payload: dict[str, Any] | None = None) -> int:
        """Record event ``event``; pipelines triggered by ``fti.on_event(event)`` run on the next tick."""
        check_name(event, "event")
        if payload is not None and not isinstance(payload, dict):
            raise ValidationError(f"event payload must be a dict or None, got {type(payload).__name__}")
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"event payload must be JSON-serialisable: {exc}") from exc
        with self._catalog.engine.begin() as conn:
            result = conn.execute(
                insert(pipeline_events).values(
                    project_id=self._project.id, name=event, payload=payload, created_at=utcnow()
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]


def _schedule_windows(schedule: Schedule, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Windows between consecutive fire times, clipped to ``[start, end)``."""
    edges = [start]
    t = start
    while True:
        t = schedule.next_after(t)
        if t >= end:
            break
        edges.append(t)
        if len(edges) > 10_000:
            raise ValidationError(
                "the backfill range spans more than 10,000 fire times: pass a larger --step"
            )
    edges.append(end)
    return list(itertools.pairwise(edges))
