"""The process tree of a pipeline run: finding and killing everything a run started.

A run's process group is not enough: a pipeline may start a program in a session of its own
(``setsid``, ``start_new_session=True``, daemons), which leaves the group. So the runner makes
itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``): a descendant whose parent exits
is re-parented to the runner instead of to init, and stays in the runner's process tree, which
is read from ``/proc`` (every process's parent pid). Killing a run kills that tree, from the
leaves up, before the runner itself, whose death would let the survivors escape to init. A pid
is signalled only while its start time is the one seen when the tree was read, so a pid reused
meanwhile by an unrelated process is left alone.

Linux only (``/proc``, ``prctl``); elsewhere the process group is what is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36

Process = tuple[int, int]
"""A process: its pid and its start time (clock ticks since boot), which tell reused pids apart."""


def become_subreaper() -> bool:
    """Make the calling process the reaper of its orphaned descendants; False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _stat(pid: int) -> tuple[int, int, str] | None:
    """``(parent pid, start time, state)`` of ``pid``, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19]), fields[0]


def descendants(pid: int) -> list[Process]:
    """Every living descendant of ``pid``, parents before their children."""
    children: dict[int, list[Process]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is not None and stat[2] != "Z":
            children.setdefault(stat[0], []).append((int(entry), stat[1]))
    found: list[Process] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def signal_process(process: Process, sig: int) -> None:
    """Signal ``process`` if its pid still names it."""
    stat = _stat(process[0])
    if stat is not None and stat[1] == process[1]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process[0], sig)


def kill_group(pgid: int, sig: int) -> None:
    """Signal every process in group ``pgid``; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def terminate_tree(pid: int) -> list[Process]:
    """Ask ``pid``'s group and every descendant to stop (SIGTERM); returns the descendants seen,
    for :func:`kill_tree` to make sure of later."""
    tree = descendants(pid)
    kill_group(pid, signal.SIGTERM)
    for process in tree:
        signal_process(process, signal.SIGTERM)
    return tree


def kill_tree(pid: int, seen: Sequence[Process] = (), *, include_root: bool = True) -> None:
    """SIGKILL every descendant of ``pid`` (and those in ``seen``), then ``pid``'s group.

    Descendants go first, repeatedly until none is left (one may fork meanwhile), while ``pid``
    still holds them; with ``include_root=False`` (the runner cleaning up after itself) the
    caller survives.
    """
    for process in seen:
        signal_process(process, signal.SIGKILL)
    for _ in range(20):
        tree = descendants(pid)
        if not tree:
            break
        for process in reversed(tree):  # children before parents: none can fork a new orphan
            signal_process(process, signal.SIGKILL)
    if include_root:
        kill_group(pid, signal.SIGKILL)
