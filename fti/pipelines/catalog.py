"""Deployed pipelines in the catalog: deploy, list, show, pause, resume, run now, backfill, logs.

Get it as ``project.pipelines``. Deploying imports a module, validates every pipeline it declares
and registers them all in one transaction (a module that fails to import registers nothing).
Manual runs and backfills execute synchronously through the same executor as the scheduler,
retried per the pipeline's policy (``retries=False`` for one attempt).
"""

from __future__ import annotations

import builtins
import itertools
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti._names import check_name
from fti.errors import NotFoundError, ValidationError
from fti.features import records as feature_records
from fti.pipelines import environments, records
from fti.pipelines import runs as run_records
from fti.pipelines.definitions import OnNewData, PipelineSpec, Trigger, load_module
from fti.pipelines.environments import fti_version
from fti.pipelines.pipeline import Pipeline
from fti.pipelines.schedules import Schedule, parse_duration, retry_delay, split_window

if TYPE_CHECKING:
    from fti.pipelines.runs import PipelineRun
    from fti.project import Project
    from fti.storage.metadata.base import Catalog, Connection

__all__ = ["BUILTIN_SOURCE", "AttemptCallback", "Pipeline", "PipelineCatalog", "StartCallback"]

AttemptCallback = Callable[["PipelineRun", int, "float | None"], None]
StartCallback = Callable[["PipelineRun", int], None]
"""Called when an attempt starts, with its run (status ``queued``) and the attempts allowed."""
"""``(finished attempt, attempts allowed, seconds until the next attempt or None)``."""

BUILTIN_SOURCE = "module:"
"""The source-path prefix of built-in pipelines: ``module:<importable module>``."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _definition(spec: PipelineSpec, source: str, digest: str) -> dict[str, Any]:
    environment = None
    if spec.environment is not None:
        environment = environments.read_file(spec.environment, Path(source).parent, spec.name).to_dict()
    return {
        "environment": environment,
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
    def _catalog(self) -> Catalog:
        return self._project.backends.catalog

    # --- definitions ------------------------------------------------------------------------
    def deploy(
        self, path: str | Path, *, now: datetime | None = None, check_env: bool = False
    ) -> list[Pipeline]:
        """Import the module at ``path`` and register (or update) every pipeline it declares.

        Schedules start counting from ``now``: no fire time before the deploy runs. Redeploying
        keeps a pipeline's paused state and run history; a changed schedule restarts its count.
        Pipelines deployed earlier from the same file that it no longer declares are paused
        (their history stays; they would otherwise fail on the changed file).

        Raises:
            NotFoundError: no such file.
            ValidationError: the module fails to import (message with traceback), declares no
                pipeline, or a declaration is invalid. Nothing is registered then.
            EnvironmentBuildError: with ``check_env``, a pipeline's environment cannot be built
                (the message ends with uv's); nothing is registered.
        """
        now = now or _utcnow()
        _, digest, specs = load_module(path)
        source = str(Path(path).expanduser().resolve())
        if not specs:
            raise ValidationError(
                f"{source!r} declares no pipeline: decorate a function with @fti.feature_pipeline(...), "
                "@fti.training_pipeline(...), @fti.inference_pipeline(...) or @fti.stream_pipeline(...)"
            )
        definitions = {spec.name: _definition(spec, source, digest) for spec in specs}
        if check_env:  # build (or find cached) every environment before registering anything
            for definition in definitions.values():
                spec_env = environments.EnvSpec.from_dict(definition["environment"])
                if spec_env is not None:
                    environments.ensure(self._project.settings.home / "envs", spec_env, fti_version())
        with self._catalog.begin() as conn:
            for spec in specs:
                definition = definitions[spec.name]
                pipeline_id, trigger_changed = records.save_pipeline(
                    conn, self._project.id, spec.name, definition, now
                )
                if trigger_changed:
                    records.reset_cursor(conn, pipeline_id, self._start_position(conn, spec.trigger))
            records.pause_others(conn, self._project.id, source, [spec.name for spec in specs], now)
        return [self.get(spec.name) for spec in specs]

    def deploy_builtin(self, spec: PipelineSpec, module: str, *, now: datetime | None = None) -> Pipeline:
        """Register (or update) a pipeline that runs function ``spec.function`` of the installed
        module ``module`` rather than of a deployed file: fti's built-in pipeline kinds, such as
        the schedule of a monitor. Its source is ``module:<module>`` and the runner calls the
        function with the pipeline's name as ``pipeline=`` (which of its kind it is)."""
        import hashlib

        source = f"{BUILTIN_SOURCE}{module}"
        digest = hashlib.sha256(source.encode()).hexdigest()
        with self._catalog.begin() as conn:
            records.save_pipeline(
                conn, self._project.id, spec.name, _definition(spec, source, digest), now or _utcnow()
            )
        return self.get(spec.name)

    def _start_position(self, conn: Connection, trigger: Trigger | None) -> int | None:
        """Event triggers start after what exists at deploy time."""
        if trigger is None:
            return None
        if isinstance(trigger, OnNewData):
            return feature_records.last_commit_position(conn, self._project.id, trigger.feature_group)
        return records.last_event_id(conn, self._project.id)

    def list(self) -> builtins.list[Pipeline]:
        """Every deployed pipeline of the project, by name."""
        return records.list_pipelines(self._catalog, self._project.id)

    def get(self, name: str) -> Pipeline:
        """The deployed pipeline ``name``; NotFoundError (listing the deployed ones) otherwise."""
        check_name(name, "pipeline")
        found = records.find_pipeline(self._catalog, self._project.id, name)
        if found is None:
            known = ", ".join(p.name for p in self.list()) or "none deployed yet"
            raise NotFoundError(
                f"pipeline {name!r} does not exist in project {self._project.name!r} (deployed: {known}); "
                "deploy it with `fti pipelines deploy path/to/module.py`"
            )
        return found

    def pause(self, name: str) -> Pipeline:
        """Stop scheduling and triggering ``name`` (running runs finish; manual runs still work)."""
        return self._set_paused(name, True)

    def resume(self, name: str, *, now: datetime | None = None) -> Pipeline:
        """Resume ``name``; fire times missed while paused follow its missed-run policy."""
        return self._set_paused(name, False, now)

    def _set_paused(self, name: str, paused: bool, now: datetime | None = None) -> Pipeline:
        pipeline = self.get(name)
        records.set_paused(self._catalog, pipeline.id, paused, now or _utcnow())
        return self.get(name)

    # --- runs ---------------------------------------------------------------------------------
    def runs(
        self, name: str | None = None, *, limit: int | None = 50, offset: int = 0
    ) -> builtins.list[PipelineRun]:
        """Runs of pipeline ``name`` (or of every pipeline), newest first, skipping ``offset``."""
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValidationError(f"offset must be an integer >= 0, got {offset!r}")
        pipeline_id = None if name is None else self.get(name).id
        return records.list_runs(
            self._catalog, self._project.id, pipeline_id=pipeline_id, limit=limit, offset=offset
        )

    def get_run(self, run_id: int) -> PipelineRun:
        """One run by id."""
        run = records.get_run(self._catalog, run_id)
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
        retries: bool = True,
        on_attempt: AttemptCallback | None = None,
        on_start: StartCallback | None = None,
    ) -> PipelineRun:
        """Run ``name`` now, synchronously; returns the last attempt's run.

        Window pipelines get ``start``/``end``; when omitted, a scheduled pipeline gets the window
        that closed most recently. The pipeline's timeout and retries apply (a failed or timed-out
        attempt is retried after its backoff, as the scheduler would); its overlap policy does not,
        and paused pipelines run too. Ctrl-C cancels it. A run of an ``on_new_data`` pipeline
        that succeeds consumes the rows its trigger was waiting for.

        Args:
            retries: False runs one attempt whatever the pipeline's ``retries`` says.
            on_attempt: Called after each attempt with its run, the number of attempts allowed
                and the seconds until the next one (None when no attempt follows).
            on_start: Called when each attempt starts, with its run and the attempts allowed.

        Raises:
            NotFoundError: unknown pipeline.
            ValidationError: unknown or missing parameters, or a bad window.
        """
        pipeline = self.get(name)
        _refuse_stream(pipeline, "run")
        checked = pipeline.check_params(params or {})
        window = self._window(pipeline, start, end)
        position = self._trigger_position(pipeline)
        now = _utcnow()
        run_id = records.create_run(
            self._catalog,
            pipeline_id=pipeline.id,
            source_digest=pipeline.source_digest,
            trigger=trigger,
            now=now,
            params=checked,
            window=window,
        )
        assert run_id is not None
        from fti import _progress

        with _progress.task(f"{name}: running"):
            result = self._attempts(pipeline, run_id, retries, on_attempt, on_start)
        if position is not None and result.status == run_records.SUCCEEDED:
            # the rows the trigger was waiting for went into this run: the scheduler must not
            # start another on the same data
            records.advance_cursor_to(self._catalog, pipeline.id, position)
        return result

    def _trigger_position(self, pipeline: Pipeline) -> int | None:
        """Where an ``on_new_data`` trigger's data ends now (None for other pipelines)."""
        if not isinstance(pipeline.trigger, OnNewData):
            return None
        with self._catalog.connect() as conn:
            return self._start_position(conn, pipeline.trigger)

    def _attempts(
        self,
        pipeline: Pipeline,
        run_id: int,
        retries: bool,
        on_attempt: AttemptCallback | None,
        on_start: StartCallback | None = None,
    ) -> PipelineRun:
        """Execute run ``run_id``, then its retries per the pipeline's policy; the last attempt."""
        if not isinstance(retries, bool):
            raise ValidationError(f"retries must be True or False, got {retries!r}")
        allowed = pipeline.retries + 1 if retries else 1
        if on_start is not None:
            on_start(records.get_run(self._catalog, run_id), allowed)
        run = self._execute(pipeline, run_id)
        while True:
            again = run.status in run_records.RETRYABLE and run.attempt < allowed
            delay = retry_delay(pipeline.retry_backoff, run.attempt) if again else None
            if on_attempt is not None:
                on_attempt(run, allowed, delay)
            if delay is None:
                return run
            time.sleep(delay)
            root = run.retry_of or run.id
            retry_id = records.create_run(
                self._catalog,
                pipeline_id=pipeline.id,
                source_digest=pipeline.source_digest,
                trigger="retry",
                trigger_key=run.trigger_key or f"retry-of:{root}",
                attempt=run.attempt + 1,
                retry_of=root,
                params=run.params,
                window=None if run.window_start is None else (run.window_start, run.window_end),  # type: ignore[arg-type]
                now=_utcnow(),
            )
            if retry_id is None:  # created by someone else meanwhile: that one runs it
                return run
            if on_start is not None:
                on_start(records.get_run(self._catalog, retry_id), allowed)
            run = self._execute(pipeline, retry_id)

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
            return pipeline.schedule.window(pipeline.schedule.latest_at_or_before(_utcnow()))
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
        run = records.get_run(self._catalog, run_id)
        proc = executor.launch(self._project, pipeline, run, owner=owner, now=_utcnow())
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
                executor.finish(self._project, proc, now=_utcnow())
                raise
            executor.finish(self._project, proc, now=_utcnow())
        return records.get_run(self._catalog, run_id)

    def backfill(
        self,
        name: str,
        start: datetime,
        end: datetime,
        *,
        step: str | timedelta | None = None,
        params: dict[str, Any] | None = None,
        retries: bool = True,
        on_attempt: AttemptCallback | None = None,
        on_start: StartCallback | None = None,
    ) -> builtins.list[PipelineRun]:
        """Run a window pipeline over ``[start, end)`` in consecutive windows, oldest first.

        Each window is retried per the pipeline's policy before the next one starts; the result
        holds each window's last attempt.

        Args:
            name: A pipeline whose function takes ``start`` and ``end``.
            start: Start of the range (tz-aware).
            end: End of the range (tz-aware), after ``start``.
            step: Window length (``"1h"``); default: the schedule's fire times, else one window.
            params: Extra parameters for every run.
            retries: False runs one attempt per window.
            on_attempt: As for :meth:`run`.
            on_start: As for :meth:`run`.
        """
        pipeline = self.get(name)
        _refuse_stream(pipeline, "backfilled")
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
        from fti import _progress

        results = []
        with _progress.task(f"backfill {name}", total=len(windows), unit="windows") as progress:
            for window in windows:
                results.append(
                    self._backfill_window(pipeline, window, checked, retries, on_attempt, on_start)
                )
                progress.advance()
        return results

    def _backfill_window(
        self,
        pipeline: Pipeline,
        window: tuple[datetime, datetime],
        checked: dict[str, Any],
        retries: bool,
        on_attempt: AttemptCallback | None,
        on_start: StartCallback | None,
    ) -> PipelineRun:
        """Create and run (with retries) the backfill run of one window."""
        key = f"backfill:{window[0].isoformat()}/{window[1].isoformat()}:{_utcnow().timestamp()}"
        run_id = records.create_run(
            self._catalog,
            pipeline_id=pipeline.id,
            source_digest=pipeline.source_digest,
            trigger="backfill",
            trigger_key=key,
            now=_utcnow(),
            params=checked,
            window=window,
        )
        assert run_id is not None
        return self._attempts(pipeline, run_id, retries, on_attempt, on_start)

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
        return records.add_event(self._catalog, self._project.id, event, payload, _utcnow())


def _refuse_stream(pipeline: Pipeline, action: str) -> None:
    if pipeline.kind == "stream":
        raise ValidationError(
            f"pipeline {pipeline.name!r} is a stream pipeline: it is not {action} but runs as a service "
            "under `fti scheduler` (see `fti pipelines show`); compute its windows over past events "
            "with fti.window.compute(...)"
        )


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
