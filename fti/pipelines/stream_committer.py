"""The committer process of a stream service: ``python -m fti.pipelines.stream_committer '<json>'``.

A stream service (:mod:`fti.pipelines.stream_runner`) starts one beside its processing loop, so
the offline micro-batch commits of its output (a Delta upsert of thousands of rows, hundreds of
milliseconds of CPU) run in their own process and never pause the loop that keeps the online
store fresh. It runs the project's :class:`~fti.streaming.committer.Committer` (which commits
only while it holds the project's lease, so it coordinates with a model server or another
service as any committer does) until SIGTERM/SIGINT, then commits what is buffered and exits 0.
Like the service, it asks the kernel for SIGTERM when its parent dies: a killed service leaves
no committer behind, and whatever that committer did not commit stays buffered for the next.
"""

from __future__ import annotations

import json
import signal
import sys
import threading


def main(argv: list[str]) -> int:
    from fti.pipelines.stream_runner import SETUP_FAILED, die_with_parent

    spec = json.loads(argv[1])
    die_with_parent(int(spec.get("parent_pid") or 0))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    from fti.errors import FtiError
    from fti.project import connect
    from fti.streaming import committer

    try:
        project = connect(project=spec["project"], create=False)
    except FtiError as exc:
        print(
            f"fti: the committer of stream pipeline {spec['pipeline']!r} cannot start: {exc}", file=sys.stderr
        )
        return SETUP_FAILED
    try:
        committer.start(
            project, every_rows=int(spec["every_rows"]), every_seconds=float(spec["every_seconds"])
        )
        stop.wait()
    finally:
        committer.stop(project)  # a last commit of what is buffered, if this process holds the lease
        project.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
