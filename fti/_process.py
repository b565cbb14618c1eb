"""This process's identity as recorded in the catalog by a write under way, and whether the process
behind such an identity is provably gone.

An identity is ``host:namespace:pid:start``: the host name, the inode of the process-id namespace
(containers on one host with the same name have different ones), the pid and the process's start
time in clock ticks since boot (a pid reused by a later process has another). Only a process of
this host and namespace can be judged: a process elsewhere is never "provably gone".
"""

from __future__ import annotations

import os
import socket

NOBODY = "catalog::0:0"
"""The identity of a write recorded by no process (a catalog migration): always gone."""


def _namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # no /proc (macOS): the host name alone
        return ""


def _start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (0 without /proc), or None
    when no such process runs (a zombie has finished running)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - one small read
    except FileNotFoundError:
        return None
    except OSError:  # no /proc: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0
        return 0
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return None if fields[0] == "Z" else int(fields[19])  # fields 3 (state) and 22 (starttime)


def identity() -> str:
    """This process's identity (not cached: a forked child has its own)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{_namespace()}:{pid}:{_start(pid) or 0}"


def local(writer: str) -> bool:
    """Whether the process of identity ``writer`` ran on this host, in this pid namespace."""
    parts = writer.rsplit(":", 3)
    return len(parts) == 4 and (parts[0], parts[1]) == (socket.gethostname(), _namespace())


def gone(writer: str) -> bool:
    """Whether the process of identity ``writer`` has provably ended: it ran here (:func:`local`)
    and no process with its pid and start time runs any more."""
    if writer == NOBODY:
        return True
    parts = writer.rsplit(":", 3)
    if not local(writer) or not parts[2].isdigit():
        return False
    running = _start(int(parts[2]))
    return running is None or (parts[3].isdigit() and running not in (0, int(parts[3])))
