"""Running one pipeline attempt in its own subprocess and process group.

``launch`` starts ``python -m fti.pipelines.runner`` in a new session (so the child and anything
it spawns share one process group), with stdout and stderr captured to files. The caller polls
the returned :class:`RunProcess`; ``kill`` signals the whole group, so a timeout or a
cancellation leaves no grandchild behind. ``finish`` stores the captured output in the artifact
store under ``pipelines/<project>/<run_id>/{stdout,stderr}.log`` and records the outcome.

Secrets: ``launch`` decrypts exactly the secrets the pipeline declares and writes them to the
child's standard input (never its command line or environment, which other processes of the user
can read); the child's environment loses the secret key and every credential-looking variable.
``finish`` masks those values in the captured output before it is stored, so neither the logs
nor the failure reason recorded on the run contain them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import FtiError
from fti.pipelines import processes, records
from fti.pipelines import runs as run_records
from fti.secrets.masking import Masker

if TYPE_CHECKING:
    from fti.pipelines.pipeline import Pipeline
    from fti.pipelines.runs import PipelineRun
    from fti.project import Project

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
HOST = socket.gethostname()


@dataclass
class RunProcess:
    """A started attempt: its process, capture files and deadline (monotonic seconds)."""

    run_id: int
    popen: subprocess.Popen[bytes]
    log_dir: Path
    deadline: float | None
    timeout: float | None = None
    outcome: str | None = None  # set when we kill it: timed_out or cancelled
    reason: str | None = None
    _files: list[Any] = field(default_factory=list)
    masker: Masker = field(default_factory=lambda: Masker(()))
    """Hides the run's secret values in its captured output."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        """The exit status once the process ended, else None."""
        return self.popen.poll()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def kill(self, outcome: str, reason: str) -> None:
        """Terminate the run's whole process tree (its group and descendants that left it):
        SIGTERM, then SIGKILL after a grace period."""
        self.outcome, self.reason = outcome, reason
        seen = processes.terminate_tree(self.popen.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=KILL_GRACE)
        processes.kill_tree(self.popen.pid, seen)
        self.popen.wait()


kill_group = processes.kill_group


# Variables a run does not inherit: the secret key, the servers' API keys and anything named like a
# credential. A run gets the credentials it declares as secrets, not the scheduler's.
_CREDENTIAL_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL|^SSH_AUTH_SOCK$|^DATABASE_URL$",
    re.IGNORECASE,
)
_AWS_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def child_environment(project: Project) -> dict[str, str]:
    """The parent's environment without credentials, plus the project's resolved backend URLs.

    Dropped: ``FTI_SECRET_KEY``, ``FTI_API_KEYS`` and every variable whose name looks like a
    credential (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``, ``AWS_ACCESS_KEY_ID``...). Kept: the AWS
    credentials when one of fti's own stores is on ``s3://`` (the run writes to it; with
    ``FTI_S3_SECRET``, those of the secret, as ``AWS_*`` variables), and the
    catalog URL (the run records its work in the catalog; its password, if any, is the one
    credential a run necessarily holds).
    """
    settings = project.settings
    store_urls = (settings.resolved_offline_url, settings.resolved_artifacts_url)
    keep = set(_AWS_CREDENTIALS) if any(u.startswith("s3://") for u in store_urls) else set()
    env = {
        k: v
        for k, v in os.environ.items()
        if k in keep or not (k in ("FTI_SECRET_KEY", "FTI_API_KEYS") or _CREDENTIAL_NAME.search(k))
    }
    if keep and settings.s3_secret is not None:  # the stores' credentials, from FTI_S3_SECRET
        from fti.secrets.s3 import environment

        env.update(environment(project.backends.s3_credentials), FTI_S3_SECRET="")  # not read again
    env.update(
        FTI_HOME=str(settings.home),
        FTI_CATALOG_URL=settings.resolved_catalog_url,
        FTI_OFFLINE_URL=settings.resolved_offline_url,
        FTI_ONLINE_URL=settings.resolved_online_url,
        FTI_VECTOR_URL=settings.resolved_vector_url,
        FTI_ARTIFACTS_URL=settings.resolved_artifacts_url,
        PYTHONUNBUFFERED="1",
    )
    return env


def launch(
    project: Project, pipeline: Pipeline, run: PipelineRun, *, owner: str, now: datetime
) -> RunProcess | None:
    """Mark ``run`` running (if it is still queued) and start its subprocess.

    The run executes the pipeline's currently deployed code (a retry queued before a fix and
    redeploy runs the fix); the digest it ran is recorded on the run.

    Returns None when another process started or cancelled the run first, or when the run
    failed before it started (a declared secret is missing or cannot be decrypted: the run is
    recorded failed with the reason).
    """
    catalog = project.backends.catalog
    if not records.transition(
        catalog,
        run.id,
        from_states=(run_records.QUEUED,),
        status=run_records.RUNNING,
        owner=owner,
        host=HOST,
        started_at=now,
        source_digest=pipeline.source_digest,
    ):
        return None
    spec = {
        "run_id": run.id,
        "project": project.name,
        "pipeline": pipeline.name,
        "source_path": pipeline.source_path,
        "source_digest": pipeline.source_digest,
        "function": pipeline.function,
        "attempt": run.attempt,
        "params": run.params,
        "start": None if run.window_start is None else run.window_start.isoformat(),
        "end": None if run.window_end is None else run.window_end.isoformat(),
        "event": run.event,
        "secrets": list(pipeline.secrets),
        "log_dir": None,  # set below: where this process captures the run's output
        # the runner builds or finds the environment, then runs the function in its interpreter
        "environment": pipeline.environment,
        "envs_dir": str(project.settings.home / "envs"),
        "monotonic_start": time.monotonic(),
    }
    try:
        secret_values = project.secrets.get_many(pipeline.secrets)
    except FtiError as exc:
        records.transition(
            catalog,
            run.id,
            from_states=(run_records.RUNNING,),
            status=run_records.FAILED,
            finished_at=now,
            error=f"the run's secrets are not available: {exc.message}",
        )
        return None
    log_dir = Path(tempfile.mkdtemp(prefix=f"fti-run-{run.id}-"))
    spec["log_dir"] = str(log_dir)  # the runner stores these logs itself when it ends
    stdout = (log_dir / "stdout.log").open("wb")
    stderr = (log_dir / "stderr.log").open("wb")
    try:
        popen = subprocess.Popen(
            [sys.executable, "-m", "fti.pipelines.runner", json.dumps(spec)],
            stdin=subprocess.PIPE if secret_values else subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=child_environment(project),
            cwd=str(Path(pipeline.source_path).parent),
            start_new_session=True,  # own process group: a timeout kills the whole tree
        )
    except OSError as exc:
        stdout.close()
        stderr.close()
        records.transition(
            catalog,
            run.id,
            from_states=(run_records.RUNNING,),
            status=run_records.FAILED,
            finished_at=now,
            error=f"could not start the run's process: {exc}",
        )
        shutil.rmtree(log_dir, ignore_errors=True)
        return None
    if popen.stdin is not None:
        # The runner reads this before anything else; a child that died early just closed the pipe.
        with contextlib.suppress(BrokenPipeError), popen.stdin:
            popen.stdin.write(json.dumps(secret_values).encode())
    records.transition(catalog, run.id, from_states=(run_records.RUNNING,), pid=popen.pid)
    deadline = None if pipeline.timeout is None else time.monotonic() + pipeline.timeout
    return RunProcess(
        run.id,
        popen,
        log_dir,
        deadline,
        pipeline.timeout,
        _files=[stdout, stderr],
        masker=Masker(secret_values.values()),
    )


def finish(project: Project, proc: RunProcess, *, now: datetime) -> str:
    """Record the outcome of an ended process unless the runner recorded it; returns the status.

    A runner that ends normally stores its logs and outcome itself (:func:`record_end`), also
    when no scheduler is alive any more; this records what it could not: a run we killed
    (timeout, cancellation) or one that died without a word.
    """
    code = proc.popen.wait()
    processes.kill_tree(proc.popen.pid)  # nothing the run spawned outlives it
    for fh in proc._files:
        fh.close()
    try:
        run = records.get_run(project.backends.catalog, proc.run_id)
        if run.status in run_records.FINAL_STATES:  # recorded by the runner (or a recovery)
            return run.status
        return record_end(
            project,
            proc.run_id,
            code,
            proc.log_dir,
            proc.masker,
            finished_at=now,
            outcome=proc.outcome,
            reason=proc.reason,
        )
    finally:
        shutil.rmtree(proc.log_dir, ignore_errors=True)


def record_end(
    project: Project,
    run_id: int,
    code: int,
    log_dir: Path,
    masker: Masker,
    *,
    finished_at: datetime,
    outcome: str | None = None,
    reason: str | None = None,
) -> str:
    """Store a run's captured output (secrets masked) under ``pipelines/<project>/<run_id>/`` and
    move the run from running to its final state; returns the status the run has now (another
    process may have recorded it first)."""
    artifacts = project.backends.artifacts
    keys: dict[str, str] = {}
    for stream in ("stdout", "stderr"):
        key = f"pipelines/{project.name}/{run_id}/{stream}.log"
        captured = log_dir / f"{stream}.log"
        if not captured.exists():  # the runner stored them and cleaned up
            continue
        if masker:
            masked = log_dir / f"{stream}.masked.log"
            with captured.open("rb") as source, masked.open("wb") as dest:
                masker.copy(source, dest)
            captured = masked
        artifacts.put_file(key, captured)
        keys[stream] = key
    if outcome is not None:
        status, error = outcome, reason
    elif code == 0:
        status, error = run_records.SUCCEEDED, None
    else:
        status = run_records.FAILED
        error = _failure_reason(artifacts.get_bytes(keys["stderr"]) if "stderr" in keys else b"", code)
    records.transition(
        project.backends.catalog,
        run_id,
        from_states=(run_records.RUNNING,),
        status=status,
        exit_code=code,
        finished_at=finished_at,
        error=error,
        log_keys=keys or None,
    )
    return records.get_run(project.backends.catalog, run_id).status


def _failure_reason(stderr: bytes, code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"killed by signal {name}"
    lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else ""
    return f"exit status {code}: {last}"[:1000] if last else f"exit status {code}"


def process_alive(pid: int, run_id: int) -> bool:
    """Whether ``pid`` on this host is still the runner process of run ``run_id``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and "fti.pipelines.runner" in cmdline and f'"run_id": {run_id},' in cmdline
