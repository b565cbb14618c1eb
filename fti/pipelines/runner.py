"""The child process of one pipeline attempt: ``python -m fti.pipelines.runner '<json spec>'``.

It imports the deployed module by path (refusing a file whose content changed since deploy),
connects to the project named in the spec with the backend URLs from the environment, and calls
the function with the project, the window and the params. The values of the secrets the pipeline
declares arrive as JSON on standard input (read before the module is imported) and are the only
secrets this process can read. Exit status: 0 success, 1 the
function raised (traceback on stderr), 3 the run could not be set up. The process exits with
``os._exit`` once the function returned, so ``atexit`` handlers do not run.

A pipeline with ``requirements=`` runs in its isolated environment
(:mod:`fti.pipelines.environments`): the runner builds or finds it, then replaces itself
(``execv``) with the runner in the environment's interpreter, passing the secrets on an
inherited pipe; the environment is recorded on the run.

The runner records its own end: it stores its captured output (secrets masked) and moves the
run to succeeded or failed with its exit status, so a run that finishes while the scheduler that
started it is dead is neither lost nor run again. It is the child subreaper of everything it
starts (:mod:`fti.pipelines.processes`) and kills what is left of that before it exits.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
import traceback
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.project import Project

SETUP_FAILED = 3
_secrets: list[str] = []
"""The values of the run's secrets, masked in the output it stores."""
_project: list[Project] = []
"""The project the function ran with, reused to record the outcome."""


def _coerce(func: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Convert string params (from the CLI) to the int/float/bool a parameter is annotated with."""
    try:
        hints = inspect.get_annotations(func, eval_str=True)
    except Exception:
        hints = {}
    out = {}
    for name, value in params.items():
        hint = hints.get(name)
        if isinstance(value, str) and hint in (int, float):
            value = hint(value)
        elif isinstance(value, str) and hint is bool:
            value = value.strip().lower() in ("1", "true", "yes", "on")
        out[name] = value
    return out


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    print(
        f"fti: run {spec['run_id']} of pipeline {spec['pipeline']!r} (attempt {spec['attempt']})"
        + (f", window {spec['start']} .. {spec['end']}" if spec.get("start") else ""),
        file=sys.stderr,
        flush=True,
    )
    try:
        declared = list(spec.get("secrets") or [])
        values = _read_secrets(spec) if declared else {}
        if spec.get("environment") and not spec.get("in_environment"):
            # before fti's heavier imports: this image of the process only builds and execs
            return _enter_environment(spec, values)  # only returns when it cannot be built

        from fti.pipelines.definitions import load_module
        from fti.project import connect
        from fti.secrets.store import grant_run_secrets

        _secrets.extend(str(values[name]) for name in declared)
        grant_run_secrets(spec["pipeline"], {name: values[name] for name in declared})

        builtin = spec["source_path"].startswith("module:")
        if builtin:  # fti's own pipeline kinds (monitors): an installed module, told which pipeline it runs
            import importlib

            module = importlib.import_module(spec["source_path"].removeprefix("module:"))
            digest = spec["source_digest"]
        else:
            module, digest, _ = load_module(spec["source_path"])
        if digest != spec["source_digest"]:
            print(
                f"fti: {spec['source_path']} changed since it was deployed (sha256 {digest[:12]} != "
                f"{spec['source_digest'][:12]}); run `fti pipelines deploy {spec['source_path']}` again",
                file=sys.stderr,
            )
            return SETUP_FAILED
        func = getattr(module, spec["function"], None)
        if func is None:
            print(f"fti: {spec['source_path']} has no function {spec['function']!r}", file=sys.stderr)
            return SETUP_FAILED
        kwargs = _coerce(func, dict(spec.get("params") or {}))
        if spec.get("start") is not None:
            kwargs["start"] = datetime.fromisoformat(spec["start"])
            kwargs["end"] = datetime.fromisoformat(spec["end"])
        if spec.get("event") is not None or "event" in inspect.signature(func).parameters:
            kwargs["event"] = spec.get("event")  # None for manual runs
        if builtin:
            kwargs["pipeline"] = spec["pipeline"]
        project = connect(project=spec["project"], create=False)
        _project.append(project)
        if spec.get("in_environment"):
            _record_environment(project, spec)
        from fti.sources.base import bind_run_project

        bind_run_project(project)  # sources created without project= use the run's
    except Exception:
        traceback.print_exc()
        return SETUP_FAILED
    try:
        result = func(project, **kwargs)
        if inspect.isawaitable(result):  # async def pipelines
            import asyncio

            asyncio.run(result)  # type: ignore[arg-type]
    except SystemExit as exc:  # sys.exit(n) inside a pipeline keeps its status
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _read_secrets(spec: dict[str, Any]) -> dict[str, Any]:
    """The secrets' values: on standard input, or (after entering an environment) on the pipe the
    previous image of this process left open for us."""
    fd = spec.get("secrets_fd")
    if fd is None:
        return dict(json.loads(sys.stdin.read()))
    import os

    with os.fdopen(int(fd), "rb") as pipe:
        return dict(json.loads(pipe.read()))


def _enter_environment(spec: dict[str, Any], values: dict[str, Any]) -> int:
    """Build (or find) the run's isolated environment and replace this process with the runner
    in its interpreter: the same process (pid, group, the subreaper role), another Python.

    Returns SETUP_FAILED with uv's message on stderr when the environment cannot be built."""
    import os
    from pathlib import Path

    from fti.errors import FtiError
    from fti.pipelines import environments

    env_spec = environments.EnvSpec.from_dict(spec["environment"])
    assert env_spec is not None
    try:
        env = environments.ensure(Path(spec["envs_dir"]), env_spec, environments.fti_version())
    except FtiError as exc:
        print(f"fti: {exc.message}", file=sys.stderr)
        frame = " \u00d7\u2570\u2500\u25b6\u2502"  # the box drawing around uv's messages
        detail = [ln.strip(frame) for ln in exc.message.splitlines() if ln.strip(frame)]
        print(
            f"fti: the run's environment could not be built: {detail[-1] if detail else exc.message}",
            file=sys.stderr,
        )
        return SETUP_FAILED
    print(
        f"fti: environment {env.digest} (Python {env.python_version}, {len(env.packages)} packages)",
        file=sys.stderr,
        flush=True,
    )
    new = {**spec, "in_environment": env.to_dict(), "secrets_fd": None}
    if values:  # secrets never go on a command line: a pipe inherited through exec
        read, write = os.pipe()
        os.write(write, json.dumps(values).encode())
        os.close(write)
        os.set_inheritable(read, True)
        new["secrets_fd"] = read
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(str(env.python), [str(env.python), "-m", "fti.pipelines.runner", json.dumps(new)])
    return SETUP_FAILED  # not reached


def _record_environment(project: Project, spec: dict[str, Any]) -> None:
    """Record the environment (its resolved packages) on the run: lineage of what it produced."""
    from fti.pipelines import records
    from fti.pipelines.runs import RUNNING

    records.transition(
        project.backends.catalog,
        int(spec["run_id"]),
        from_states=(RUNNING,),
        environment=spec["in_environment"],
    )


def _record(spec: dict[str, Any], code: int, started: float) -> None:
    """Store this run's output and outcome in the catalog (see the module docstring). When that
    fails, the process that started the run records it from the exit status."""
    import shutil
    from datetime import timedelta
    from pathlib import Path

    log_dir = spec.get("log_dir")
    if not log_dir:
        return
    try:
        from fti.pipelines import executor, records
        from fti.pipelines.runs import FINAL_STATES, RUNNING
        from fti.project import connect
        from fti.secrets.masking import Masker

        project = _project[0] if _project else connect(project=spec["project"], create=False)
        with project:
            run = records.get_run(project.backends.catalog, int(spec["run_id"]))
            if run.status != RUNNING or run.started_at is None:
                return  # killed, cancelled or recorded meanwhile by someone else
            # on the clock the run was started with (the scheduler's), plus the time it took
            finished = run.started_at + timedelta(seconds=time.monotonic() - started)
            status = executor.record_end(
                project, run.id, code, Path(log_dir), Masker(_secrets), finished_at=finished
            )
        if status in FINAL_STATES:
            shutil.rmtree(log_dir, ignore_errors=True)
    except Exception as exc:  # the parent still records it
        print(f"fti: the run could not record its own outcome ({exc})", file=sys.stderr)


def _exit(code: int) -> None:
    """Flush and leave at once: a library's leftover non-daemon thread must not keep a finished
    run "running" until its timeout (the function has returned; there is nothing left to do)."""
    import logging
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    from fti.pipelines import processes

    started = json.loads(sys.argv[1]).get("monotonic_start") or time.monotonic()  # kept across exec
    processes.become_subreaper()  # descendants that leave the process group stay ours to kill
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    import os

    processes.kill_tree(os.getpid(), include_root=False)  # nothing the run started outlives it
    _record(json.loads(sys.argv[1]), code, started)
    _exit(code)
