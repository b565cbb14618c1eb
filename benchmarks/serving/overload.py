"""Goodput of the model server under overload (issue 19 item 15).

Model and server as in ``serve_bench``: scikit-learn ``HistGradientBoostingClassifier`` on
``make_classification(100_000, n_features=20)``, deployed with dynamic batching
(max_batch_size=64, max_batch_delay_ms=2, the fastest verified scorer, request logging on) and
served by a real ``fti serve`` process (one worker) on loopback. ``wrk`` (closed loop: every
connection sends its next single-row request as soon as it has an answer) drives it:

1. at 1, 2, 4, ... 128 connections: the peak goodput and the saturation point, the fewest
   connections reaching 90 % of the peak;
2. at 4x the saturation point, and at 2,000 connections (where the issue measured ~1 % of
   capacity served).

Goodput is 2xx responses per second (503s and timeouts are not goodput). Reference, measured in
the same run: the peak goodput. Target: goodput at 4x saturation >= 80 % of the peak. Also
printed: the share of requests shed (503), p99 latency of the run, and the server's CPU per 2xx
response.

Run: .venv/bin/python -m benchmarks.serving.overload [--seconds 10] [--max-inflight N]
(needs `wrk` on PATH)
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

import fti
from benchmarks._report import row
from benchmarks.serving.serve_bench import (
    DATA,
    FEATURES,
    body,
    cpu_seconds,
    free_port,
    run_wrk,
    wrk_latency_ms,
)

LEVELS = (1, 2, 4, 8, 16, 32, 64, 128)
ISSUE_CONNECTIONS = 2_000
SATURATED = 0.9
"""The saturation point: the fewest connections whose goodput reaches this share of the peak."""


def wrk(url: str, payload: dict[str, Any], connections: int, seconds: int, work: Path) -> dict[str, float]:
    """One closed-loop ``wrk`` run: goodput (2xx/s), shed (503) and failed requests, p99."""
    out = run_wrk(url, payload, connections, seconds, work, threads=min(2, connections))
    total = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))  # type: ignore[union-attr]
    duration = re.search(r"requests in ([\d.]+)(ms|s|m)", out)
    assert duration, out
    elapsed = float(duration.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[duration.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    refused = int(non2xx.group(1)) if non2xx else 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(g) for g in sockets.groups()) if sockets else 0
    p99 = wrk_latency_ms(out, "99")
    p99_ms = float("nan") if p99 is None else p99
    ok = total - refused
    return {
        "goodput": ok / elapsed,
        "ok": ok,
        "refused": refused,
        "socket_errors": socket_errors,
        "p99_ms": p99_ms,
        "shed": refused / max(1, total),
    }


def start_server(home: Path, port: int, log: Path, options: list[str]) -> subprocess.Popen[bytes]:
    """``fti serve`` with ``options``, once it answers a prediction."""
    url = f"http://127.0.0.1:{port}/v2/models/hgb/infer"
    args = [sys.executable, "-m", "fti.cli.main", "--home", str(home), "serve", "--port", str(port), *options]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    payload = body(np.zeros((1, 20)))
    while True:
        try:
            if httpx.post(url, json=payload, timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"server exited; see {log}")
        time.sleep(0.05)


def run(
    url: str, payload: dict[str, Any], connections: int, seconds: int, work: Path, pid: int
) -> dict[str, float]:
    cpu0 = cpu_seconds(pid)
    figures = wrk(url, payload, connections, seconds, work)
    figures["cpu_ms_per_ok"] = (cpu_seconds(pid) - cpu0) * 1000 / max(1, figures["ok"])
    row(
        f"{connections} connections",
        goodput=figures["goodput"],
        shed=figures["shed"],
        socket_errors=int(figures["socket_errors"]),
        p99_ms=figures["p99_ms"],
        cpu_ms_per_2xx=figures["cpu_ms_per_ok"],
    )
    time.sleep(1)  # let connections close and timers settle between runs
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load run")
    parser.add_argument("--max-inflight", type=int, default=None, help="fti serve --max-inflight")
    args = parser.parse_args()
    options = [] if args.max_inflight is None else ["--max-inflight", str(args.max_inflight)]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * ISSUE_CONNECTIONS + 256:  # wrk and the server each hold one file per connection
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * ISSUE_CONNECTIONS), hard))

    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(100_000, n_features=20, random_state=0)
    model = HistGradientBoostingClassifier(random_state=0).fit(X, y)
    DATA.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=DATA))
    home = work / "home"
    with fti.connect(home=home) as project:
        mv = project.model_registry.register(
            "hgb", model, input_example=pd.DataFrame(X[:200], columns=FEATURES)
        )
        project.model_registry.set_alias("hgb", mv.version, "production")
        project.serving.deploy("hgb", model="hgb@production", max_batch_size=64, max_batch_delay_ms=2)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v2/models/hgb/infer"
    process = start_server(home, port, work / "server.log", options)
    payload = body(X[1000:1001])
    print(
        f"# overload benchmark: HistGradientBoostingClassifier, 20 features, 1-row requests, {args.seconds} s runs"
    )
    try:
        time.sleep(2)
        levels = {c: run(url, payload, c, args.seconds, work, process.pid) for c in LEVELS}
        peak = max(f["goodput"] for f in levels.values())
        saturation = min(c for c, f in levels.items() if f["goodput"] >= SATURATED * peak)
        row("reference: peak goodput (2xx/s)", goodput=peak)
        row("saturation point (90% of the peak)", connections=saturation)
        overload = run(url, payload, 4 * saturation, args.seconds, work, process.pid)
        issue = run(url, payload, ISSUE_CONNECTIONS, args.seconds, work, process.pid)
        after = run(url, payload, saturation, args.seconds, work, process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    row(
        f"ratio: goodput at 4x saturation ({4 * saturation} connections) / peak", x=overload["goodput"] / peak
    )
    row(f"ratio: goodput at {ISSUE_CONNECTIONS} connections / peak", x=issue["goodput"] / peak)
    row("ratio: goodput at saturation after the overload / peak", x=after["goodput"] / peak)
    print(f"# machine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
