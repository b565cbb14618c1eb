"""fti._process: a writer's identity and whether its process is provably gone."""

from __future__ import annotations

import os
import subprocess
import sys

from fti import _process


def test_this_process_runs_and_a_finished_one_is_gone() -> None:
    mine = _process.identity()
    assert mine.split(":")[2] == str(os.getpid())
    assert _process.local(mine) and not _process.gone(mine)
    child = subprocess.run(
        [sys.executable, "-c", "from fti import _process; print(_process.identity())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert _process.local(child) and _process.gone(child)


def test_a_reused_pid_is_another_process() -> None:
    host, namespace, pid, start = _process.identity().rsplit(":", 3)
    assert _process.gone(f"{host}:{namespace}:{pid}:{int(start) + 1}")  # same pid, later start


def test_a_process_elsewhere_is_never_judged_gone() -> None:
    host, namespace, pid, start = _process.identity().rsplit(":", 3)
    assert not _process.gone(f"{host}-other:{namespace}:{pid}:{int(start) + 1}")  # another host
    assert not _process.gone(f"{host}:1:{pid}:{int(start) + 1}")  # another pid namespace
    assert not _process.local("not an identity") and not _process.gone("not an identity")
    assert _process.gone(_process.NOBODY)  # a write entered by a migration, by no process
