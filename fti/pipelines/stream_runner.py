"""The process of one stream pipeline service: ``python -m fti.pipelines.stream_runner '<json spec>'``.

Started and supervised by the scheduler (:mod:`fti.pipelines.services`). It imports the deployed
module (refusing a file changed since deploy), connects to the project, receives the values of
its declared secrets on standard input (as pipeline runs do), and runs the
:class:`~fti.streaming.processor.StreamProcessor` until SIGTERM/SIGINT, then exits 0. The offline
commits of its output run in a child process (:mod:`fti.pipelines.stream_committer`), stopped
(after a last commit) when the service stops, so they never pause the processing loop. It asks the kernel to send it SIGTERM when the scheduler that
started it dies, so a dead scheduler leaves no orphan consuming the stream beside its successor's.
Exit status: 0 stopped, 1 the processing failed (traceback on stderr), 3 it could not be set up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import traceback

SETUP_FAILED = 3
PR_SET_PDEATHSIG = 1
COMMIT_EVERY_ROWS = 10_000  # the output's offline micro-batches: every N rows or T seconds
COMMIT_EVERY_SECONDS = 5.0
COMMITTER_GRACE = 8.0  # seconds the committer has for its last commit (the scheduler allows 10)


def _start_committer(
    spec: dict[str, object], every_rows: int, every_seconds: float
) -> subprocess.Popen[bytes]:
    """The service's committer process (its output goes to this service's log)."""
    options = {
        "project": spec["project"],
        "pipeline": spec["pipeline"],
        "parent_pid": os.getpid(),
        "every_rows": every_rows,
        "every_seconds": every_seconds,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "fti.pipelines.stream_committer", json.dumps(options)],
        stdin=subprocess.DEVNULL,
    )


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the parent (``parent``, the scheduler) dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if parent and os.getppid() != parent:  # the parent died before the request took effect
        sys.exit(SETUP_FAILED)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    die_with_parent(int(spec.get("parent_pid") or 0))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(
        f"fti: stream pipeline {spec['pipeline']!r} starting (pid {os.getpid()})", file=sys.stderr, flush=True
    )
    try:
        from fti.pipelines.definitions import load_module
        from fti.pipelines.streams import STREAM_ATTRIBUTE
        from fti.project import connect
        from fti.secrets.store import grant_run_secrets
        from fti.sources.base import bind_run_project
        from fti.streaming.processor import StreamProcessor

        declared = list(spec.get("secrets") or [])
        values = json.loads(sys.stdin.read()) if declared else {}
        grant_run_secrets(spec["pipeline"], {name: values[name] for name in declared})
        module, digest, _ = load_module(spec["source_path"])
        if digest != spec["source_digest"]:
            print(
                f"fti: {spec['source_path']} changed since it was deployed; run `fti pipelines deploy "
                f"{spec['source_path']}` again",
                file=sys.stderr,
            )
            return SETUP_FAILED
        stream = getattr(getattr(module, spec["function"], None), STREAM_ATTRIBUTE, None)
        if stream is None:
            print(
                f"fti: {spec['source_path']} declares no stream pipeline {spec['function']!r}",
                file=sys.stderr,
            )
            return SETUP_FAILED
        project = connect(project=spec["project"], create=False)
        bind_run_project(project)  # sources made without project= use this one
        processor = StreamProcessor(
            project, spec["pipeline"], stream, pipeline_id=int(spec["pipeline_id"]), commit_in_process=False
        ).open()
        committer = _start_committer(spec, COMMIT_EVERY_ROWS, COMMIT_EVERY_SECONDS)
    except Exception:
        traceback.print_exc()
        return SETUP_FAILED
    try:
        processor.run(stop)
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        processor.report()
        processor.close()
        project.close()
        committer.terminate()  # it commits what is buffered, then exits
        try:
            committer.wait(timeout=COMMITTER_GRACE)
        except subprocess.TimeoutExpired:  # the rows stay buffered for the next committer
            committer.kill()
    print(f"fti: stream pipeline {spec['pipeline']!r} stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
