"""Long-running services of deployed stream pipelines, supervised by the scheduler.

The leading scheduler keeps one process (``python -m fti.pipelines.stream_runner``) per deployed,
unpaused stream pipeline. A process that ends is restarted after a backoff that doubles with each
crash in a row (``restart_backoff * 2**(n-1)``, +0-25 % jitter, at most 5 minutes; a service that
ran for a minute starts counting again). Pausing, undeploying or redeploying a pipeline stops its
process (redeploying starts the new code); a scheduler that stops or loses its lease stops all of
them, and a scheduler that dies takes them with it (the processes ask the kernel for SIGTERM when
their parent dies), so its successor never runs a second copy beside them.

The supervision state (state, pid, restarts, why the service last ended, when it starts again) is
stored with :mod:`fti.streaming.records`; the service reports its own lag and counters there.
A service's output goes to ``$FTI_HOME/streams/<project>/<pipeline>.log`` with the values of its
secrets masked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from fti.errors import FtiError
from fti.pipelines import executor, processes
from fti.secrets.masking import Masker
from fti.streaming import records

if TYPE_CHECKING:
    from fti.pipelines.pipeline import Pipeline
    from fti.project import Project

log = logging.getLogger("fti.scheduler")

KIND = "stream"
MAX_BACKOFF = 300.0
STABLE_AFTER = 60.0  # seconds of running after which a crash counts as the first in a row
STOP_GRACE = 10.0  # seconds a service has to commit its output and exit after SIGTERM


@dataclass
class _Service:
    pipeline: Pipeline
    popen: subprocess.Popen[bytes]
    started: float
    log_path: Path
    tail: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None


class ServiceSupervisor:
    """Starts, watches, restarts and stops the stream services of ``project``."""

    def __init__(self, project: Project, holder: str, rng: random.Random | None = None) -> None:
        self.project = project
        self.holder = holder
        self.rng = rng or random.Random()
        self._services: dict[int, _Service] = {}
        self._failures: dict[int, int] = {}
        self._restarts: dict[int, int] = {}
        self._not_before: dict[int, float] = {}

    @property
    def running(self) -> dict[str, int]:
        """Pipeline name -> pid of the services this supervisor runs."""
        return {s.pipeline.name: s.popen.pid for s in self._services.values()}

    def sync(self, pipelines: list[Pipeline]) -> None:
        """One supervision pass (the scheduler calls it every tick while it leads)."""
        wanted = {p.id: p for p in pipelines if p.kind == KIND and not p.paused}
        for pipeline_id, service in list(self._services.items()):
            pipeline = wanted.get(pipeline_id)
            if pipeline is None:
                self._stop(pipeline_id, "paused or undeployed")
            elif pipeline.source_digest != service.pipeline.source_digest:
                self._stop(pipeline_id, "redeployed: restarting with the new code")
                self._not_before.pop(pipeline_id, None)
        for pipeline_id, service in list(self._services.items()):
            code = service.popen.poll()
            if code is not None:
                self._ended(pipeline_id, service, code)
        now = time.monotonic()
        for pipeline_id, pipeline in wanted.items():
            if pipeline_id not in self._services and now >= self._not_before.get(pipeline_id, 0.0):
                self._launch(pipeline)

    def stop_all(self, reason: str) -> None:
        for pipeline_id in list(self._services):
            self._stop(pipeline_id, reason)

    # --- one service ----------------------------------------------------------------------------
    def _launch(self, pipeline: Pipeline) -> None:
        catalog = self.project.backends.catalog
        try:
            secrets = self.project.secrets.get_many(pipeline.secrets)
        except FtiError as exc:
            self._backoff(pipeline, f"its secrets are not available: {exc.message}")
            return
        folder = self.project.settings.home / "streams" / self.project.name
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / f"{pipeline.name}.log"
        spec = {
            "project": self.project.name,
            "pipeline": pipeline.name,
            "pipeline_id": pipeline.id,
            "source_path": pipeline.source_path,
            "source_digest": pipeline.source_digest,
            "function": pipeline.function,
            "secrets": list(pipeline.secrets),
            "parent_pid": os.getpid(),
        }
        try:
            popen = subprocess.Popen(
                [sys.executable, "-m", "fti.pipelines.stream_runner", json.dumps(spec)],
                stdin=subprocess.PIPE if secrets else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=executor.child_environment(self.project),
                cwd=str(Path(pipeline.source_path).parent),
                start_new_session=True,
            )
        except OSError as exc:
            self._backoff(pipeline, f"could not start its process: {exc}")
            return
        if popen.stdin is not None:
            with contextlib.suppress(BrokenPipeError), popen.stdin:
                popen.stdin.write(json.dumps(secrets).encode())
        service = _Service(pipeline, popen, time.monotonic(), log_path)
        assert popen.stdout is not None
        service.pump = threading.Thread(
            target=_pump, args=(popen.stdout, log_path, Masker(secrets.values()), service.tail), daemon=True
        )
        service.pump.start()
        self._services[pipeline.id] = service
        records.report_supervision(
            catalog,
            pipeline.id,
            state="running",
            supervisor=self.holder,
            pid=popen.pid,
            host=executor.HOST,
            started_at=datetime.now(UTC),
            restarts=self._restarts.get(pipeline.id, 0),
            next_start_at=None,
        )
        log.info("started stream pipeline %r (pid %s)", pipeline.name, popen.pid)

    def _ended(self, pipeline_id: int, service: _Service, code: int) -> None:
        del self._services[pipeline_id]
        if service.pump is not None:
            service.pump.join(timeout=5)
        ran = time.monotonic() - service.started
        if ran >= STABLE_AFTER:
            self._failures.pop(pipeline_id, None)
        self._restarts[pipeline_id] = self._restarts.get(pipeline_id, 0) + 1
        reason = _reason(code, service.tail)
        log.warning("stream pipeline %r ended (%s) after %.1fs", service.pipeline.name, reason, ran)
        self._backoff(service.pipeline, reason)

    def _backoff(self, pipeline: Pipeline, reason: str) -> None:
        failures = self._failures[pipeline.id] = self._failures.get(pipeline.id, 0) + 1
        base = max(pipeline.retry_backoff, 0.1)
        delay = min(base * 2 ** (failures - 1), MAX_BACKOFF) * (1 + self.rng.uniform(0, 0.25))
        self._not_before[pipeline.id] = time.monotonic() + delay
        records.report_supervision(
            self.project.backends.catalog,
            pipeline.id,
            state="backoff",
            supervisor=self.holder,
            pid=None,
            restarts=self._restarts.get(pipeline.id, 0),
            last_exit=reason[:2000],
            next_start_at=datetime.now(UTC) + timedelta(seconds=delay),
        )

    def _stop(self, pipeline_id: int, reason: str) -> None:
        service = self._services.pop(pipeline_id)
        popen = service.popen
        with contextlib.suppress(ProcessLookupError):
            popen.terminate()
        try:
            popen.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            processes.kill_tree(popen.pid)
            popen.kill()
            popen.wait()
        if service.pump is not None:
            service.pump.join(timeout=5)
        self._failures.pop(pipeline_id, None)
        with contextlib.suppress(FtiError):
            records.report_supervision(
                self.project.backends.catalog,
                pipeline_id,
                state="stopped",
                pid=None,
                last_exit=f"stopped: {reason}",
                next_start_at=None,
            )
        log.info("stopped stream pipeline %r: %s", service.pipeline.name, reason)


def _reason(code: int, tail: list[str]) -> str:
    """Why a service ended: its exit status or signal, and its last line of output."""
    import signal

    if code < 0:
        try:
            what = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            what = f"killed by signal {-code}"
    else:
        what = f"exit status {code}"
    last = next((line.strip() for line in reversed(tail) if line.strip()), "")
    return f"{what}: {last}" if last else what


def _pump(stream: IO[bytes], path: Path, masker: Masker, tail: list[str]) -> None:
    """Copy a service's output to its log file, secrets masked; keep the last lines for errors."""
    with path.open("ab") as out:
        for raw in stream:
            line = masker.text(raw.decode("utf-8", "replace"))
            out.write(line.encode())
            out.flush()
            tail.append(line.rstrip("\n"))
            del tail[:-20]


def service_status(
    project: Project, pipelines: list[Pipeline], *, dead_letters: int = 0
) -> dict[str, dict[str, object]]:
    """What ``fti pipelines list/show`` show of stream pipelines' services: state, process,
    restarts, last exit, lag, counters, watermark, freshness (and, with ``dead_letters``, that
    many of the latest dead letters, read from the checkpoint when it is on this machine).
    Pipelines whose service never started are ``{"state": "not started"}``."""
    streams = [p for p in pipelines if p.kind == KIND]
    found = records.get_status(project.backends.catalog, [p.id for p in streams])
    out: dict[str, dict[str, object]] = {}
    for pipeline in streams:
        status = found.get(pipeline.id)
        data: dict[str, object] = {"state": "not started"} if status is None else status.to_dict()
        if status is not None and status.heartbeat_at is not None:
            data["heartbeat_age_s"] = round((datetime.now(UTC) - status.heartbeat_at).total_seconds(), 1)
        if dead_letters:
            from fti.streaming.state import read_dead_letters

            path = project.settings.home / "streams" / project.name / f"{pipeline.name}.db"
            data["recent_dead_letters"] = read_dead_letters(path, dead_letters)
        out[pipeline.name] = data
    return out
