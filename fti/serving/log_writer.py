"""The inference-log writer process: ``python -m fti.serving.log_writer``, one per server process.

Committing log rows (a Delta append, the catalog's commit record, compaction) costs ~10-15 ms of
CPU per commit, most of it Python holding the GIL; in the server's process that stalled the
event loop once a second and cost requests milliseconds at the 99th percentile. So the server
only spools its rows (:mod:`fti.serving.log_spool`) and this process commits them
(:class:`~fti.serving.log_committer.LogCommitter`), at a lower CPU priority than the server.

Parent side: :class:`WriterProcess` starts it, sends it the settings and options as the first
line of its standard input, then ``flush`` lines (commit now), and reads one JSON report per round
from its standard output (files done, rows written and dropped per deployment, failures, CPU
seconds). Closing its standard input (or the server dying, which closes it too) tells it to
commit what is spooled and exit; SIGTERM does the same, SIGINT is ignored (a Ctrl-C in the
terminal reaches the whole process group: the server stops it in order). When the server died
rather than stopped (its directory's owner lock is free), the writer also commits the segments
the server had open, and removes the directory. The server restarts a writer that died
(:class:`~fti.serving.request_log.RequestLogger`); a new writer replays the directory, skipping
segments its predecessor committed.

Besides its own server's directory, each writer adopts the directories of servers that are gone
(a crashed server, a worker that ``fti serve --workers N`` replaced): their rows are committed too.
Each worker has its own writer, as it had its own writer thread: workers stay independent
(uvicorn restarts one without the others) and need no election or channel between them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.project import Project
    from fti.serving.log_committer import LogCommitter, Outcome
    from fti.serving.log_spool import Spool

log = logging.getLogger("fti.serving.request_log")

NICE = 10
"""How much lower the writer's CPU priority is than the server's: requests come first."""
ADOPT_EVERY_S = 10.0
DRAIN_S = 25.0
"""Seconds a stopping writer keeps retrying commits that fail before it gives up (what is left
stays spooled for the next writer)."""


def settings_payload(project: Project) -> dict[str, Any]:
    """The project's settings as JSON values, secrets included (sent through a pipe, never
    through the environment or the command line)."""
    settings = project.settings
    data: dict[str, Any] = settings.model_dump(mode="json")
    if settings.secret_key is not None:
        data["secret_key"] = settings.secret_key.get_secret_value()
    return data


class WriterProcess:
    """One running writer process, seen from the server.

    Args:
        options: What the writer needs (see :func:`main`): settings, project, spool directory...
        on_report: Called (on a reader thread) with each report the writer prints.
    """

    def __init__(self, options: dict[str, Any], on_report: Callable[[dict[str, Any]], None]) -> None:
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "fti.serving.log_writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._popen.stdin is not None and self._popen.stdout is not None
        self._stdin: IO[bytes] = self._popen.stdin
        self._lock = threading.Lock()
        self.send(json.dumps(options))
        self._reader = threading.Thread(
            target=self._read,
            args=(self._popen.stdout, on_report),
            name="fti-inference-log-reports",
            daemon=True,
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._reader.is_alive()

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def send(self, line: str) -> bool:
        """Write one line to the writer; False when it is gone."""
        with self._lock:
            try:
                self._stdin.write(line.encode() + b"\n")
                self._stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                return False
        return True

    def stop(self, timeout: float) -> bool:
        """Tell the writer to commit what is spooled and exit; wait up to ``timeout`` seconds,
        then kill it. True when it exited by itself."""
        with self._lock, contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "the inference-log writer (pid %s) did not finish in %.0f s: killed", self.pid, timeout
            )
            self._popen.kill()
            self._popen.wait()
            self._reader.join(5)
            return False
        self._reader.join(5)
        return True

    @staticmethod
    def _read(stdout: IO[bytes], on_report: Callable[[dict[str, Any]], None]) -> None:
        with stdout:
            for line in stdout:
                try:
                    report = json.loads(line)
                except ValueError:  # not a report (a library printing to stdout)
                    continue
                try:
                    on_report(report)
                except Exception:  # pragma: no cover - a bug in the bookkeeping must not stop the reader
                    log.exception("handling an inference-log writer report failed")


def main() -> int:
    """The writer process (see the module docs). Exit status 0 after a drain, 3 when it could
    not be set up (no project, its spool directory locked by another writer)."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stdin = sys.stdin.buffer.fileno()
    first, pending = _first_line(stdin)
    options = json.loads(first)
    from fti.serving.server import configure_logging

    configure_logging(access_log=False, level=str(options.get("log_level", "info")))
    with contextlib.suppress(OSError):
        os.nice(NICE)
    from datetime import timedelta

    from fti.config import Settings
    from fti.errors import FtiError
    from fti.project import connect
    from fti.serving.log_committer import LogCommitter
    from fti.serving.log_spool import Spool

    spool = Spool(Path(options["spool"]))
    try:
        project = connect(project=options["project"], settings=Settings(**options["settings"]), create=False)
    except FtiError as exc:
        log.error("the inference-log writer cannot start: %s", exc)
        return 3
    if not spool.writer.acquire(timeout=30):
        log.error("the inference-log spool %s is locked by another writer", spool.directory)
        return 3
    committer = LogCommitter(
        project,
        compact_interval_s=float(options["compact_interval_s"]),
        compact_min_commits=int(options["compact_min_commits"]),
        vacuum_retention=timedelta(seconds=float(options["vacuum_retention_s"])),
    )
    writer = _Loop(committer, spool, float(options["flush_interval_s"]), stop, pending)
    try:
        writer.run()
    finally:
        spool.writer.release()
        project.close()
    return 0


def _first_line(fd: int) -> tuple[bytes, bytes]:
    """The first line on ``fd`` and what was read after it (read unbuffered: the loop selects
    on the descriptor, so no line may wait in a Python buffer)."""
    data = b""
    while b"\n" not in data:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    first, _, rest = data.partition(b"\n")
    return first, rest


def _empty() -> Outcome:
    from fti.serving.log_committer import Outcome

    return Outcome()


class _Loop:
    """The writer's rounds: commit its directory every interval (or when asked), adopt the
    directories of servers that are gone, compact; on EOF or SIGTERM, drain and return."""

    def __init__(
        self, committer: LogCommitter, spool: Spool, interval: float, stop: threading.Event, pending: bytes
    ) -> None:
        self._committer = committer
        self._pending = pending
        self._spool = spool
        self._interval = interval
        self._stop = stop
        self._cpu = time.process_time()
        self._last_adoption = 0.0
        self._backoff = 0.0

    def run(self) -> None:
        stdin = sys.stdin.buffer.fileno()
        pending = self._pending
        # segments close every interval: look for them four times as often, so a row waits at
        # most about 1.25 intervals after its segment closed
        poll = max(0.05, self._interval / 4)
        due = time.monotonic() + (0.0 if b"flush" in pending else poll)
        while not self._stop.is_set():
            readable, _, _ = select.select([stdin], [], [], min(max(0.0, due - time.monotonic()), 0.5))
            asked = False
            if readable:
                data = os.read(stdin, 65536)
                if not data:  # the server closed the pipe (or died): drain and exit
                    break
                pending += data
                asked = b"flush" in pending
                pending = pending.rpartition(b"\n")[2]
            if asked or time.monotonic() >= due:
                failed = self._round()
                self._backoff = min(30.0, max(self._interval, self._backoff * 2)) if failed else 0.0
                due = time.monotonic() + (self._backoff or poll)
        orphaned = self._spool.owner.acquire()  # the server is gone (it holds this lock for life)
        if orphaned:  # it died: the segments it had open are ours to close, then the directory
            self._spool.seal()
        deadline = time.monotonic() + DRAIN_S
        while self._spool.files(1) and time.monotonic() < deadline:
            if self._round(adopt=False):
                time.sleep(1.0)
        if orphaned and not self._spool.files(1):
            shutil.rmtree(self._spool.directory, ignore_errors=True)
        self._report(_empty())

    def _round(self, adopt: bool = True) -> bool:
        """One round; True when a commit failed (retried later)."""
        outcome = self._committer.commit(self._spool)
        if adopt and time.monotonic() - self._last_adoption >= ADOPT_EVERY_S:
            self._last_adoption = time.monotonic()
            adopted = self._adopt()
            outcome.written.update(adopted.written)
            outcome.dropped.update(adopted.dropped)
            outcome.reasons.update(adopted.reasons)
            outcome.failed.update(adopted.failed)
        self._committer.maintain()
        if outcome.done or outcome.failed or outcome.written or outcome.dropped:
            self._report(outcome)
        return bool(outcome.failed)

    def _report(self, outcome: Outcome) -> None:
        """Print one report (with the CPU seconds spent since the last one)."""
        cpu = time.process_time()
        report = {
            "done": outcome.done,
            "written": dict(outcome.written),
            "dropped": dict(outcome.dropped),
            "reasons": outcome.reasons,
            "failed": outcome.failed,
            "cpu": cpu - self._cpu,
        }
        self._cpu = cpu
        try:
            print(json.dumps(report), flush=True)
        except OSError:  # the server is gone: nobody reads the reports any more
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    def _adopt(self) -> Outcome:
        """Commit the spools of servers that are gone, and remove them."""
        from fti.serving.log_committer import Outcome
        from fti.serving.log_spool import orphans

        adopted = Outcome()
        for orphan in orphans(self._spool.directory.parent, exclude=self._spool.name):
            try:
                if not orphan.writer.acquire():  # its writer is still draining it
                    continue
                had_rows = bool(orphan.files(1))
                while orphan.files(1):
                    outcome = self._committer.commit(orphan)
                    adopted.written.update(outcome.written)
                    adopted.dropped.update(outcome.dropped)
                    adopted.reasons.update(outcome.reasons)
                    if outcome.failed:
                        adopted.failed.update(outcome.failed)
                        break
                else:
                    shutil.rmtree(orphan.directory, ignore_errors=True)
                    if had_rows:
                        log.info(
                            "committed the inference-log spool of a server that is gone (%s)", orphan.name
                        )
            finally:
                orphan.writer.release()
                orphan.owner.release()
        return adopted


if __name__ == "__main__":
    sys.exit(main())
