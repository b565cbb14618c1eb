"""Safe-rollout figures: the latency a shadow adds to the primary, and a rollback under load.

Model: scikit-learn ``HistGradientBoostingClassifier`` on ``make_classification(20_000,
n_features=20)``, two versions (``production`` = 1, ``candidate`` = 2), deployed with the fastest
verified scorer and request logging on, served by a real ``fti serve`` process (one worker) on
loopback. Load: ``--clients`` closed-loop HTTP clients (threads of this process, one keep-alive
connection each) sending single-row requests for ``--seconds``.

1. Shadow overhead. Reference, measured in the same run: the deployment without a shadow. Then
   the same deployment with ``shadow="hgb@candidate"`` (every request copied to version 2 off the
   request path). Printed: median and p99 latency and throughput of each, the p99 ratio (target:
   <= 1.20) and the shadow copies predicted and dropped.
2. Rollback. ``production`` moves 1 -> 2, the load runs, ``mr.rollback`` moves it back while the
   clients keep sending. Printed: requests and failed requests during the run (target: 0), and
   the seconds from the rollback's commit to the first response of version 1 (bounded by the
   server's poll interval plus loading the version).

Run: .venv/bin/python -m benchmarks.serving.rollout_bench [--seconds 10] [--clients 4]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

import fti
from benchmarks._report import median, percentile, row
from benchmarks.serving.serve_bench import FEATURES, body, free_port, start_server


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def setup(home: Path) -> None:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(20_000, n_features=20, random_state=0)
    frame = pd.DataFrame(X, columns=FEATURES)
    with fti.connect(home=home) as project:
        mr = project.model_registry
        for seed in (0, 1):
            model = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(frame, y)
            mr.register("hgb", model, input_example=frame.head(50))
        mr.set_alias("hgb", 1, "production")
        mr.set_alias("hgb", 2, "candidate")


def load(
    url: str, clients: int, seconds: float, stop: threading.Event | None = None
) -> list[tuple[float, int, str]]:
    """``(latency s, status, served version)`` of every request of ``clients`` closed-loop clients."""
    rows = np.random.default_rng(0).normal(size=(512, 20))
    payloads = [body(rows[i : i + 1]) for i in range(len(rows))]
    out: list[tuple[float, int, str]] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(k: int) -> None:
        mine = []
        with httpx.Client(base_url=url, timeout=30) as c:
            i = k
            while time.perf_counter() < deadline and not (stop is not None and stop.is_set()):
                started = time.perf_counter()
                r = c.post("/v2/models/hgb/infer", json=payloads[i % len(payloads)])
                took = time.perf_counter() - started
                version = r.json().get("model_version", "") if r.status_code == 200 else ""
                mine.append((took, r.status_code, str(version)))
                i += clients
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def serve_and_load(home: Path, work: Path, clients: int, seconds: float, label: str) -> tuple[float, str]:
    port = free_port()
    process, _ = start_server(home, port, work / f"{label}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        load(url, clients, 2.0)  # warm up
        results = load(url, clients, seconds)
        time.sleep(1.0)  # let the shadow finish its queue
        metrics = httpx.get(f"{url}/metrics").text
    finally:
        process.terminate()
        process.wait(30)
    latencies = [t for t, status, _ in results if status == 200]
    failed = sum(1 for _, status, _ in results if status != 200)
    p99 = percentile(latencies, 99) * 1000
    row(
        label,
        requests=len(results),
        failed=failed,
        req_per_s=round(len(results) / seconds),
        median_ms=round(median(latencies) * 1000, 2),
        p99_ms=round(p99, 2),
        shadow_predicted=int(_metric(metrics, "fti_inference_requests_total", variant="shadow")),
        shadow_dropped=int(_metric(metrics, "fti_shadow_dropped_total")),
    )
    return p99, metrics


def rollback_under_load(home: Path, work: Path, clients: int, seconds: float) -> None:
    with fti.connect(home=home) as project:
        project.serving.deploy("hgb", model="hgb@production")
        project.model_registry.set_alias("hgb", 2, "production", reason="benchmark")
    port = free_port()
    process, _ = start_server(home, port, work / "rollback.log")
    url = f"http://127.0.0.1:{port}"
    results: list[tuple[float, int, str]] = []
    done = threading.Event()

    def run() -> None:
        results.extend(load(url, clients, seconds * 2, stop=done))

    loader = threading.Thread(target=run)
    try:
        loader.start()
        time.sleep(seconds / 2)
        with fti.connect(home=home) as project:
            project.model_registry.rollback("hgb", reason="benchmark rollback")
        committed = time.perf_counter()
        swapped = None
        with httpx.Client(base_url=url, timeout=30) as c:
            while swapped is None and time.perf_counter() - committed < 60:
                r = c.post("/v2/models/hgb/infer", json=body(np.zeros((1, 20))))
                if r.status_code == 200 and r.json()["model_version"] == "1":
                    swapped = time.perf_counter() - committed
        time.sleep(seconds / 2)
        done.set()
        loader.join()
    finally:
        process.terminate()
        process.wait(30)
    versions = [v for _, status, v in results if status == 200]
    row(
        "rollback 2 -> 1 under load",
        requests=len(results),
        failed=sum(1 for _, status, _ in results if status != 200),
        served_by_v2=versions.count("2"),
        served_by_v1=versions.count("1"),
        seconds_to_v1=None if swapped is None else round(swapped, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fti-rollout-bench-") as tmp:
        work = Path(tmp)
        home = work / "home"
        setup(home)
        with fti.connect(home=home) as project:
            project.serving.deploy("hgb", model="hgb@production")
        reference, _ = serve_and_load(home, work, args.clients, args.seconds, "without shadow (reference)")
        with fti.connect(home=home) as project:
            project.serving.deploy("hgb", model="hgb@production", shadow="hgb@candidate")
        shadowed, _ = serve_and_load(home, work, args.clients, args.seconds, "with shadow")
        row("shadow p99 / reference p99", ratio=round(shadowed / reference, 3), target="<= 1.20")
        rollback_under_load(home, work, args.clients, args.seconds)


if __name__ == "__main__":
    main()
