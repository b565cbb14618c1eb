"""How long the request log keeps a server's event loop waiting (issue 21), without HTTP noise.

An asyncio loop, like the server's, wakes every millisecond and logs ``--rate`` / 1000 single-row
inference records per wake (20 features, label and probabilities, as ``serve_bench``'s model)
through a started :class:`~fti.serving.request_log.RequestLogger` on a real project (SQLite
catalog, local Delta). Each wake's lateness is what a request arriving then would wait for the
GIL or the loop: the benchmark prints its p50, p99, p99.9 and max, and the share of wakes more
than 1 ms late, with the log on and, as the reference in the same run, off (the same loop making
the same records and dropping them). Each configuration runs in a fresh process, interleaved
over ``--rounds``. Also printed: the log's CPU per request in the server process (the thread that
hands rows off) and in its writer process, from the logger's metrics.

Run: .venv/bin/python -m benchmarks.serving.log_stalls [--seconds 20] [--rate 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._report import median, percentile, row, run_child

NAMES = tuple(f"f{i}" for i in range(20))


def child(log: bool, seconds: float, rate: int) -> dict[str, float]:
    """Run the loop for ``seconds`` in this process; its lateness figures and CPU per request."""
    import gc

    import numpy as np

    import fti
    from fti.serving.metrics import ServerMetrics
    from fti.serving.request_log import InferenceRecord, RequestLogger

    home = Path(tempfile.mkdtemp(prefix="fti-log-stalls-"))
    project = fti.connect(home=home)
    metrics = ServerMetrics()
    logger = RequestLogger(project, metrics)
    if log:
        logger.start()
    gc.collect()
    gc.freeze()  # as the server does after its start
    rng = np.random.default_rng(0)
    labels, proba = np.zeros(64, np.int64), rng.random((64, 2)).astype(np.float32)
    per_wake = max(1, rate // 1000)
    late: list[float] = []
    sent = 0

    async def run() -> None:
        nonlocal sent
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        due = loop.time() + 0.001
        while loop.time() < end:
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            late.append(now - due)
            due = max(due + 0.001, now)  # a late wake does not pile up wakes behind it
            for _ in range(per_wake):
                k = sent % 64
                record = InferenceRecord(
                    "hgb",
                    "hgb",
                    1,
                    f"{sent:032x}",
                    datetime.now(UTC),
                    NAMES,
                    rng.random((1, 20)),
                    {"label": labels[k : k + 1], "probabilities": proba[k : k + 1]},
                )
                if log:
                    logger.log(record)
                sent += 1

    asyncio.run(run())
    handoff = writer = 0.0
    if log:
        logger.stop()
        text = metrics.render().decode()
        handoff = _counter(text, "fti_inference_log_flush_cpu_seconds_total")
        writer = _counter(text, "fti_inference_log_writer_cpu_seconds_total")
    project.close()
    ms = [x * 1000 for x in late]
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "p999_ms": percentile(ms, 99.9),
        "max_ms": max(ms),
        "late_1ms_pct": 100 * sum(x > 1.0 for x in ms) / len(ms),
        "server_log_cpu_us_req": handoff * 1e6 / max(1, sent),
        "writer_cpu_us_req": writer * 1e6 / max(1, sent),
        "written": float(logger.written),
        "sent": float(sent),
    }


def _counter(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=2000, help="inference records per second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "on", args.seconds, args.rate)))
        return
    print(
        f"# event-loop lateness with the request log on and off: {args.rate} records/s, {args.seconds:.0f} s"
    )
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for r in range(args.rounds):
        for config in ("off", "on"):
            figures = run_child(
                "benchmarks.serving.log_stalls",
                "--child",
                config,
                "--seconds",
                str(args.seconds),
                "--rate",
                str(args.rate),
            )
            runs[config].append(figures)
            if config == "on" and figures["written"] != figures["sent"]:
                raise SystemExit(f"the log lost rows: {figures}")
            row(
                f"[log {config}, round {r + 1}]",
                **{k: v for k, v in figures.items() if k not in ("sent", "written")},
            )
    med = {c: {k: median([f[k] for f in fs]) for k in fs[0]} for c, fs in runs.items()}
    for field in ("p99_ms", "p999_ms", "max_ms", "late_1ms_pct"):
        row(f"request log on - off, {field} (medians)", diff=med["on"][field] - med["off"][field])
    import os

    print(f"# machine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    sys.stdout.flush()


if __name__ == "__main__":
    start = time.perf_counter()
    main()
