"""Shared helpers for benchmark scripts: timing, percentiles and a uniform printed report."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def timed(fn: Callable[[], Any]) -> float:
    """Seconds taken by one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat(fn: Callable[[], Any], n: int) -> list[float]:
    """Per-call latencies in seconds over ``n`` calls."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def row(label: str, **figures: Any) -> None:
    parts = []
    for key, value in figures.items():
        parts.append(f"{key}={value:,.3f}" if isinstance(value, float) else f"{key}={value}")
    print(f"{label:<42} " + "  ".join(parts), flush=True)


def run_child(module: str, *args: str, python: str = sys.executable) -> dict[str, Any]:
    """Run ``python -m module *args`` in a fresh process (so its peak memory is its own) from the
    repository root, and return the JSON object its last output line holds. Another ``python``
    (e.g. an incumbent's virtualenv) imports this repository's code through ``PYTHONPATH``."""
    import os

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p),
    }
    done = subprocess.run(
        [python, "-m", module, *args], capture_output=True, text=True, check=False, cwd=root, env=env
    )
    if done.returncode:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (VmHWM). Unlike ``ru_maxrss``, which a child
    inherits from its parent across fork+exec, it starts from zero in a fresh process."""
    import resource

    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_prediction(process: Any, url: str, payload: dict[str, Any], log: Path, started: float) -> float:
    """Seconds from ``started`` until a server ``process`` answers ``payload`` at ``url`` with 200
    (polled every 20 ms); exits when the process dies first (its stderr is in ``log``)."""
    import httpx

    while True:
        try:
            if httpx.post(url, json=payload, timeout=5).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the server exited; see {log}")
        time.sleep(0.02)
