"""The scheduler: fires schedules and triggers, starts runs, enforces timeouts, retries, recovers.

One loop per project, driven by an injectable clock (``tick()`` does one pass, ``run()`` loops).
Only the holder of the project's lease row in the catalog acts; the lease is renewed every tick
and expires ``lease_ttl`` after the last renewal, so when a leader dies another scheduler takes
over. Firing is idempotent on top of that: a schedule's cursor moves by compare-and-set and a
run is unique per (fire time, attempt), so even two leaders could not fire a slot twice.

Per tick, as leader: recover runs left ``running`` by a dead scheduler or CLI (mark them failed,
kill their leftover process group, retry per policy); reap finished or timed-out runs of our own
(store logs, retry with exponential backoff and jitter); fire due schedule slots (one slot at
most, per the missed-run policy) and event triggers (new feature-group commits, fired events);
start queued runs whose time has come, applying the overlap policy; keep stream pipelines' services
running (:mod:`fti.pipelines.services`); run the duties (rollouts) it was given. Timeouts use
the real monotonic clock (they bound process time); the rest uses the injected one.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from fti.features import records as feature_records
from fti.pipelines import executor, processes, records
from fti.pipelines import runs as run_records
from fti.pipelines.catalog import PipelineCatalog
from fti.pipelines.definitions import OnEvent, OnNewData
from fti.pipelines.schedules import plan_fire, retry_delay
from fti.pipelines.services import ServiceSupervisor

if TYPE_CHECKING:
    from fti.pipelines.executor import RunProcess
    from fti.pipelines.pipeline import Pipeline
    from fti.pipelines.runs import PipelineRun
    from fti.project import Project
    from fti.storage.metadata.base import Catalog

log = logging.getLogger("fti.scheduler")

_SCHEDULED_TRIGGERS = ("schedule", "new_data", "event")
"""Runs the scheduler retries (manual runs and backfills are retried by the process running them)."""


class Clock(Protocol):
    """Where the scheduler gets the time from."""

    def now(self) -> datetime:
        """The current time, tz-aware."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait between ticks."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to (tests, simulations). ``sleep`` waits briefly in real time."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        with self._lock:
            self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
            return self._now

    def set(self, t: datetime) -> None:
        with self._lock:
            self._now = t

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, 0.02))


class Scheduler:
    """Runs a project's deployed pipelines on their schedules and triggers.

    Args:
        project: The project whose pipelines to run.
        clock: Time source (default: the real clock).
        tick_interval: Seconds between ticks in :meth:`run`.
        lease_ttl: How long leadership lasts without renewal.
        misfire_grace: How late a fire time may start and still count as on time.
        holder: This scheduler's identity in the lease row (default: host, pid and a random part).
        rng: Random source for retry jitter.
        only: Schedule, trigger and start only these pipelines (by name); the others are left
            alone, as if they were not deployed (e.g. to run an event-triggered pipeline now).
        duties: More work only the leader does at every tick, called with the clock's time (e.g.
            advancing canary rollouts, which ``fti scheduler`` adds); a failing duty is logged.
    """

    def __init__(
        self,
        project: Project,
        *,
        clock: Clock | None = None,
        tick_interval: float = 1.0,
        lease_ttl: timedelta = timedelta(seconds=30),
        misfire_grace: timedelta = timedelta(minutes=1),
        holder: str | None = None,
        rng: random.Random | None = None,
        only: Sequence[str] | None = None,
        duties: Sequence[Callable[[datetime], object]] = (),
    ) -> None:
        self.project = project
        self.clock = clock or SystemClock()
        self.tick_interval = tick_interval
        self.lease_ttl = lease_ttl
        self.misfire_grace = misfire_grace
        self.holder = holder or f"scheduler:{executor.HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()
        self.is_leader = False
        self._procs: dict[int, RunProcess] = {}
        self._adopted: dict[int, float | None] = {}
        """Runs left by a dead executor whose process still works: id -> timeout in seconds."""
        self._swept = False
        self._stop = threading.Event()
        self._pipelines = PipelineCatalog(project)
        self._only = None if only is None else frozenset(only)
        self._services = ServiceSupervisor(project, self.holder, self.rng)
        self._duties = list(duties)

    @property
    def _catalog(self) -> Catalog:
        return self.project.backends.catalog

    @property
    def active_runs(self) -> list[int]:
        """Ids of the runs this scheduler is executing right now."""
        return sorted(self._procs)

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        """Tick until :meth:`stop` is called (or Ctrl-C); then cancel our runs and release the lease."""
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:  # a catalog hiccup must not end the loop; the next tick retries
                    log.exception("scheduler tick failed; retrying in %ss", self.tick_interval)
                if isinstance(self.clock, SystemClock):
                    self._stop.wait(self.tick_interval)  # stop() wakes it at once
                elif not self._stop.is_set():
                    self.clock.sleep(self.tick_interval)
        finally:
            self.shutdown()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current tick."""
        self._stop.set()

    def tick(self) -> None:
        """One pass: lease, recovery, reaping, firing, starting."""
        now = self.clock.now()
        leader = self._acquire_lease(now)
        if leader and not self.is_leader:
            log.info("%s is now the scheduler of project %r", self.holder, self.project.name)
        elif self.is_leader and not leader:
            log.warning("%s lost the lease of project %r; standing by", self.holder, self.project.name)
        if not leader:
            self._swept = False
        self.is_leader = leader
        self._reap()
        if not leader:
            self._services.stop_all("this scheduler is not the leader")
            return
        by_id = {p.id: p for p in self._pipelines.list() if self._only is None or p.name in self._only}
        self._services.sync(list(by_id.values()))  # stream pipelines run as services
        self._recover(now, by_id)
        self._watch_adopted(now)
        for pipeline in by_id.values():
            if pipeline.paused:
                continue
            if pipeline.schedule is not None:
                self._fire_schedule(pipeline, now)
            if isinstance(pipeline.trigger, OnNewData):
                self._fire_new_data(pipeline, pipeline.trigger, now)
            elif isinstance(pipeline.trigger, OnEvent):
                self._fire_event(pipeline, pipeline.trigger, now)
        self._start_due(now, by_id)
        for duty in self._duties:
            try:
                duty(now)
            except Exception:  # one duty's failure must not stop the schedules (or other duties)
                log.exception("scheduler duty %r failed", duty)

    def shutdown(self) -> None:
        """Cancel the runs we are executing and give up the lease."""
        self._services.stop_all("the scheduler stopped")
        for proc in list(self._procs.values()):
            proc.kill(run_records.CANCELLED, "cancelled: the scheduler was stopped")
        self._reap()
        records.release_lease(self._catalog, self.project.id, self.holder, self.clock.now())
        self.is_leader = False

    # --- leadership -----------------------------------------------------------------------------
    def _acquire_lease(self, now: datetime) -> bool:
        return records.acquire_lease(self._catalog, self.project.id, self.holder, now, now + self.lease_ttl)

    # --- runs we execute ------------------------------------------------------------------------
    def _reap(self) -> None:
        for run_id, proc in list(self._procs.items()):
            if proc.poll() is None:
                if not proc.expired():
                    continue
                log.warning("run %s timed out; killing its process group", run_id)
                proc.kill(
                    run_records.TIMED_OUT, f"timed out after {proc.timeout:g}s; its process group was killed"
                )
            del self._procs[run_id]
            status = executor.finish(self.project, proc, now=self.clock.now())
            log.info("run %s %s (exit code %s)", run_id, status, proc.popen.returncode)
            if status in run_records.RETRYABLE and self.is_leader:
                self._retry(records.get_run(self._catalog, run_id), self.clock.now())

    def _retry(self, run: PipelineRun, now: datetime) -> None:
        pipeline = next((p for p in self._pipelines.list() if p.id == run.pipeline_id), None)
        if pipeline is None or run.attempt > pipeline.retries:
            return
        delay = retry_delay(pipeline.retry_backoff, run.attempt, rng=self.rng)
        root = run.retry_of or run.id
        run_id = records.create_run(
            self._catalog,
            pipeline_id=run.pipeline_id,
            source_digest=pipeline.source_digest,
            trigger="retry",
            trigger_key=run.trigger_key or f"retry-of:{root}",
            attempt=run.attempt + 1,
            retry_of=root,
            params=run.params,
            window=None if run.window_start is None else (run.window_start, run.window_end),  # type: ignore[arg-type]
            event=run.event,
            now=now,
            not_before=now + timedelta(seconds=delay),
        )
        if run_id is not None:
            log.info("run %s failed; retry %s (attempt %s) in %.1fs", run.id, run_id, run.attempt + 1, delay)

    def _recover(self, now: datetime, by_id: dict[int, Pipeline]) -> None:
        """Take care of runs whose executor (a scheduler or a CLI) is gone.

        A run whose process still works is adopted: it records its own end (see
        :mod:`fti.pipelines.runner`), this scheduler enforces its timeout and retries it if it
        fails. A run whose process is gone without recording its end is marked failed and
        retried. A run that failed while no scheduler was leading gets the retry it missed.
        """
        if not self._swept:  # once per leadership: failures nobody was there to retry
            for run in records.unretried_failures(self._catalog, self.project.id):
                # a retry's key names its first attempt's trigger ("retry-of:..." for manual runs)
                first = (run.trigger_key or "").split(":", 1)[0] if run.trigger == "retry" else run.trigger
                if run.pipeline_id in by_id and first in _SCHEDULED_TRIGGERS:
                    self._retry(run, now)
            self._swept = True
        running = records.list_runs(self._catalog, self.project.id, statuses=(run_records.RUNNING,))
        for run in running:
            if run.owner == self.holder or run.pipeline_id not in by_id:
                continue
            owner = run.owner or ""
            if owner.startswith("cli:"):
                _, host, pid = owner.split(":", 2)
                if host != executor.HOST or _pid_alive(int(pid)):
                    continue  # a CLI run in progress
            if run.host == executor.HOST and run.pid and executor.process_alive(run.pid, run.id):
                if records.transition(
                    self._catalog, run.id, from_states=(run_records.RUNNING,), owner=self.holder
                ):
                    log.warning("run %s was left running by %s: adopted", run.id, owner)
                    self._adopted[run.id] = by_id[run.pipeline_id].timeout
                continue
            self._fail(
                run, f"its executor ({owner}) stopped while it was running; marked failed on recovery", now
            )

    def _watch_adopted(self, now: datetime) -> None:
        """Retry adopted runs that failed, and end those that overran their timeout or died."""
        for run_id, timeout in list(self._adopted.items()):
            run = records.get_run(self._catalog, run_id)
            if run.status in run_records.FINAL_STATES:
                del self._adopted[run_id]
                if run.status in run_records.RETRYABLE:
                    self._retry(run, now)
            elif run.pid is None or not executor.process_alive(run.pid, run.id):
                del self._adopted[run_id]
                self._fail(run, "its process ended without recording an outcome", now)
            elif (
                timeout is not None
                and run.started_at is not None
                and now >= run.started_at + timedelta(seconds=timeout)
            ):
                del self._adopted[run_id]
                processes.kill_tree(run.pid)
                self._fail(
                    run,
                    f"timed out after {timeout:g}s; its process tree was killed",
                    now,
                    run_records.TIMED_OUT,
                )

    def _fail(self, run: PipelineRun, reason: str, now: datetime, status: str = run_records.FAILED) -> None:
        if records.transition(
            self._catalog,
            run.id,
            from_states=(run_records.RUNNING,),
            status=status,
            finished_at=now,
            error=reason,
        ):
            log.warning("run %s: %s", run.id, reason)
            self._retry(records.get_run(self._catalog, run.id), now)

    # --- firing ---------------------------------------------------------------------------------
    def _fire_schedule(self, pipeline: Pipeline, now: datetime) -> None:
        assert pipeline.schedule is not None
        cursor = pipeline.cursor or pipeline.created_at
        plan = plan_fire(pipeline.schedule, cursor, now, missed=pipeline.missed, grace=self.misfire_grace)
        if plan.cursor == cursor:
            return
        new_runs = []
        if plan.skipped:
            # recorded, not just logged: the run history shows which windows were not run and
            # how to run them
            start, end = pipeline.schedule.window(plan.skipped[0])[0], plan.skipped[-1]
            error = (
                f"not run: {len(plan.skipped)} fire time(s) missed (no scheduler running, or the "
                f"pipeline paused; missed={pipeline.missed!r}); to run their windows: fti pipelines "
                f"backfill {pipeline.name} --start {start.isoformat()} --end {end.isoformat()}"
            )
            new_runs.append(
                self._run(pipeline, f"missed:{plan.skipped[0].isoformat()}", (start, end), now, error)
            )
        if plan.slot is not None:
            slot = plan.slot
            new_runs.append(
                self._run(pipeline, f"schedule:{slot.isoformat()}", pipeline.schedule.window(slot), now)
            )
        if not records.fire_schedule(self._catalog, pipeline.id, pipeline.cursor, plan.cursor, new_runs):
            return  # another scheduler handled these fire times
        if plan.skipped:
            log.warning("pipeline %r: %s", pipeline.name, new_runs[0]["error"])

    @staticmethod
    def _run(
        pipeline: Pipeline,
        key: str,
        window: tuple[datetime, datetime],
        now: datetime,
        error: str | None = None,
    ) -> dict[str, Any]:
        """A scheduled run (queued), or with ``error`` the record of windows that were not run."""
        return records.run_values(
            pipeline_id=pipeline.id,
            source_digest=pipeline.source_digest,
            trigger="schedule",
            trigger_key=key,
            window=window,
            now=now,
            status=run_records.QUEUED if error is None else run_records.CANCELLED,
            error=error,
        )

    def _fire_new_data(self, pipeline: Pipeline, trigger: OnNewData, now: datetime) -> None:
        cursor = records.cursor_position(self._catalog, pipeline.id)
        with self._catalog.connect() as conn:
            commits = feature_records.commits_after(
                conn, self.project.id, trigger.feature_group, cursor, trigger.version
            )
        rows = sum(c.rows for c in commits)
        if not commits or rows < trigger.min_rows:
            return
        last = int(commits[-1].id)
        if not records.advance_cursor(self._catalog, pipeline.id, cursor, last):
            return
        event = {
            "type": "new_data",
            "feature_group": trigger.feature_group,
            "rows": rows,
            "commits": [
                {"version": c.group_version, "commit": c.delta_version, "rows": c.rows} for c in commits
            ],
        }
        records.create_run(
            self._catalog,
            pipeline_id=pipeline.id,
            source_digest=pipeline.source_digest,
            trigger="new_data",
            trigger_key=f"new_data:{last}",
            event=event if pipeline.signature.takes_event else None,
            now=now,
        )

    def _fire_event(self, pipeline: Pipeline, trigger: OnEvent, now: datetime) -> None:
        cursor = records.cursor_position(self._catalog, pipeline.id)
        rows = records.events_after(self._catalog, self.project.id, trigger.event, cursor)
        if not rows or not records.advance_cursor(self._catalog, pipeline.id, cursor, rows[-1].id):
            return
        # Several events since the last tick coalesce into one run with the latest payload.
        event = {"type": "event", "name": trigger.event, "payload": rows[-1].payload, "count": len(rows)}
        records.create_run(
            self._catalog,
            pipeline_id=pipeline.id,
            source_digest=pipeline.source_digest,
            trigger="event",
            trigger_key=f"event:{rows[-1].id}",
            event=event if pipeline.signature.takes_event else None,
            now=now,
        )

    # --- starting -------------------------------------------------------------------------------
    def _start_due(self, now: datetime, by_id: dict[int, Pipeline]) -> None:
        for run_id in records.due_run_ids(self._catalog, list(by_id), now):
            run = records.get_run(self._catalog, run_id)
            pipeline = by_id[run.pipeline_id]
            if pipeline.paused and run.trigger != "retry":
                continue
            running = [
                r
                for r in records.list_runs(
                    self._catalog, self.project.id, pipeline_id=pipeline.id, statuses=(run_records.RUNNING,)
                )
            ]
            forbid = pipeline.concurrency == "forbid"
            waits = run.trigger == "retry" or (forbid and run.window_start is not None)
            if running and waits and pipeline.concurrency != "allow":
                # a window is never dropped: it starts when the running one has finished (a
                # retry, of an older window, never replaces a newer run either)
                continue
            if running and pipeline.concurrency == "forbid":
                records.transition(
                    self._catalog,
                    run.id,
                    from_states=(run_records.QUEUED,),
                    status=run_records.CANCELLED,
                    finished_at=now,
                    error=f"skipped: run {running[0].id} was still running (concurrency='forbid')",
                )
                continue
            if running and pipeline.concurrency == "replace":
                for other in running:
                    self._cancel(other, f"cancelled: replaced by run {run.id} (concurrency='replace')", now)
            proc = executor.launch(self.project, pipeline, run, owner=self.holder, now=now)
            if proc is not None:
                self._procs[run.id] = proc
                log.info(
                    "started run %s of %r (%s, attempt %s, pid %s)",
                    run.id,
                    pipeline.name,
                    run.trigger_key or run.trigger,
                    run.attempt,
                    proc.pid,
                )

    def _cancel(self, run: PipelineRun, reason: str, now: datetime) -> None:
        proc = self._procs.pop(run.id, None)
        if proc is not None:
            proc.kill(run_records.CANCELLED, reason)
            executor.finish(self.project, proc, now=now)
            return
        if run.host == executor.HOST and run.pid and executor.process_alive(run.pid, run.id):
            processes.kill_tree(run.pid)
        self._adopted.pop(run.id, None)
        records.transition(
            self._catalog,
            run.id,
            from_states=(run_records.RUNNING,),
            status=run_records.CANCELLED,
            finished_at=now,
            error=reason,
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
