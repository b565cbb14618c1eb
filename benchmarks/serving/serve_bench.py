"""Model server throughput, latency, CPU per request, cold start and idle RSS (issue 5).

Model: scikit-learn ``HistGradientBoostingClassifier`` on ``make_classification(100_000,
n_features=20, random_state=0)``, deployed with dynamic batching (max_batch_size=64,
max_batch_delay_ms=2) and the default request logging and access log on. ``fti serve`` runs as
a real process on loopback; ``wrk`` (with a Lua body script) drives it with single-row V2 infer
requests at 1, 8 and 64 connections, then 100-row requests at 8 connections. Server CPU per
request comes from /proc (utime+stime of the server process). The whole run is done three times:
with the native scikit-learn scorer, with the fastest verified scorer (ONNX Runtime, converted
at deploy time and verified against the native model), and the latter without request logging
(``--rounds N`` runs the configurations N times, taking turns, and compares their medians). The
request log's CPU is reported where it is spent: in the server (building and spooling the rows)
and in its writer process (committing them), and the writer's memory beside the server's.
Reference, measured in the same run: the model's raw in-process ``predict`` on one row and the
ONNX scorer on one row.

Targets: >= 2,000 req/s at 64 clients, p99 <= 20 ms at 8 clients, <= 0.5 ms server CPU per
single-row request at 64 clients, cold start <= 2 s, idle RSS <= 250 MB.

With ``--mlserver-python`` the same loads also run against MLServer (adaptive batching) serving
the same model, and the ratios to it are printed (see ``_mlserver``).

Run: .venv/bin/python -m benchmarks.serving.serve_bench [--seconds 15]   (needs `wrk` on PATH)
     [--mlserver-python VENV/bin/python]
     .venv/bin/python -m benchmarks.serving.serve_bench --cold-only   (cold start and idle RSS only:
     native; fastest with the converted winner cached but not its manifest, i.e. the native model
     is loaded and the winner re-verified; fastest built from the cached manifest alone)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

import fti
from benchmarks._report import first_prediction, median, repeat, row
from benchmarks.serving import _enriched, _mlserver

FEATURES = [f"f{i}" for i in range(20)]
DATA = Path(__file__).resolve().parents[1] / ".data" / "serving"
CONFIGS = {
    "native": ("native", True, False),
    "native-nolog": ("native", False, False),
    "fastest": ("fastest", True, False),
    "fastest-nolog": ("fastest", False, False),
    "enriched": ("fastest", True, True),
}
"""Server configurations: name -> (scorer, request logging, enrichment). ``enriched`` serves the
same task with its 20 features looked up online from two feature groups (the request sends the
key only, see ``_enriched``); compare it with ``fastest``."""


def body(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, j].round(6).tolist()}
            for j, name in enumerate(FEATURES)
        ]
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid`` (utime+stime from /proc)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def log_cpu_seconds(port: int) -> tuple[float, float]:
    """CPU seconds the request log has spent: in the server (building and spooling the rows) and
    in its writer process (committing them); zeros without a request log."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text

    def counter(name: str) -> float:
        match = re.search(rf"^{name}_total\s+([\d.e+-]+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    return counter("fti_inference_log_flush_cpu_seconds"), counter("fti_inference_log_writer_cpu_seconds")


def children_rss_mb(pid: int) -> float:
    """Resident memory of ``pid``'s child processes (the request log's writer)."""
    children = set()
    for task in Path(f"/proc/{pid}/task").iterdir():  # each thread lists the children it started
        try:
            children.update((task / "children").read_text().split())
        except OSError:  # the thread ended
            continue
    total = 0.0
    for child in children:
        try:
            total += rss_mb(int(child))
        except OSError:  # it ended
            continue
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def warm_bytecode(work: Path) -> dict[str, str]:
    """The environment of a server start with a warm bytecode cache, as after ``pip install``
    (which compiles every module): the cache in ``work/pycache``, written by the first start
    even where ``PYTHONDONTWRITEBYTECODE`` is set (a source checkout run that way would compile
    fti's own modules at every start and time that instead)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def start_server(
    home: Path, port: int, log: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``fti serve``; returns the process and seconds until the first successful prediction."""
    url = f"http://127.0.0.1:{port}"
    payload = body(np.zeros((1, 20)))
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "fti.cli.main", "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        env=env,
    )
    return process, first_prediction(process, f"{url}/v2/models/hgb/infer", payload, log, started)


def run_wrk(
    url: str, payload: dict[str, Any], connections: int, seconds: int, script_dir: Path, threads: int = 1
) -> str:
    """``wrk``'s report of one closed-loop run POSTing ``payload`` (JSON) to ``url``."""
    script = script_dir / f"body_{connections}_{len(payload['inputs'][0]['data'])}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{json.dumps(payload)}]]\n"
    )
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    return subprocess.run(
        [*command, "-s", str(script), url], check=True, capture_output=True, text=True
    ).stdout


def wrk_latency_ms(out: str, percentile: str) -> float | None:
    """A latency percentile of a ``wrk --latency`` report in ms (None when it is not reported)."""
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        return None
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def wrk(
    url: str, payload: dict[str, Any], connections: int, seconds: int, script_dir: Path
) -> dict[str, float]:
    out = run_wrk(url, payload, connections, seconds, script_dir)

    def latency(label: str) -> float:
        value = wrk_latency_ms(out, label)
        assert value is not None, out
        return value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return {"rps": rps, "p50_ms": latency("50"), "p99_ms": latency("99"), "errors": errors, "requests": total}


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its child processes (MLServer predicts in worker processes)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(tree_cpu_seconds(int(child)) for child in children if Path(f"/proc/{child}").exists())
    return total


def load_run(
    pid: int,
    url: str,
    payload: dict[str, Any],
    connections: int,
    seconds: int,
    work: Path,
    fti_port: int | None,
) -> dict[str, float]:
    """One wrk run against a server: its figures, the server's CPU per request (fti: its own
    process; MLServer: with its worker processes, which predict), its busiest thread's, and (fti)
    the request log's, in the server and in its writer process."""
    cpu = cpu_seconds if fti_port else tree_cpu_seconds
    cpu0 = cpu(pid)
    handoff0, writer0 = log_cpu_seconds(fti_port) if fti_port else (0.0, 0.0)
    threads0 = thread_cpu_seconds(pid)
    figures = wrk(url, payload, connections, seconds, work)
    requests = max(1, figures["requests"])
    figures["server_cpu_ms_per_req"] = (cpu(pid) - cpu0) * 1000 / requests
    # the busiest thread is the event loop (HTTP, JSON, dispatch): per-thread CPU is steadier than
    # req/s on a shared machine
    threads1 = thread_cpu_seconds(pid)
    figures["loop_cpu_ms_per_req"] = (
        max(threads1[t] - threads0.get(t, 0.0) for t in threads1) * 1000 / requests
    )
    # the request log's own CPU time, in the server and in its writer process: what the log
    # costs, little moved by the load of other processes, unlike req/s (the writer commits after
    # the run: wait for it)
    handoff1, writer1 = handoff0, writer0
    if fti_port:
        time.sleep(2.5)
        handoff1, writer1 = log_cpu_seconds(fti_port)
    figures["log_server_cpu_ms_per_req"] = (handoff1 - handoff0) * 1000 / requests
    figures["log_writer_cpu_ms_per_req"] = (writer1 - writer0) * 1000 / requests
    return figures


def report(label: str, rows: int, connections: int, figures: dict[str, float]) -> None:
    row(
        f"[{label}] {rows}-row, {connections} clients",
        req_s=figures["rps"],
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        errors=int(figures["errors"]),
        cpu_ms_req=figures["server_cpu_ms_per_req"],
        loop_cpu_ms_req=figures["loop_cpu_ms_per_req"],
        log_server_cpu_ms_req=figures["log_server_cpu_ms_per_req"],
        log_writer_cpu_ms_req=figures["log_writer_cpu_ms_per_req"],
    )


def mlserver(
    python: str, model: Any, X: np.ndarray, loads: list[tuple[int, ...]], seconds: int, work: Path
) -> dict[str, list[dict[str, float]]]:
    """The same loads against MLServer serving the same model (see ``_mlserver``)."""
    version = subprocess.run(
        [python, "-c", "import mlserver; print(mlserver.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    folder = _mlserver.prepare(model, work / "mlserver", port, free_port(), free_port())
    process, cold = _mlserver.start(python, folder, port, work / "mlserver.log")
    label = f"MLServer {version}, adaptive batching"
    results = {}
    try:
        time.sleep(2)
        row(f"[{label}] cold start (process -> 1st prediction)", s=cold)
        row(f"[{label}] idle RSS (main process)", MB=rss_mb(process.pid))
        url = f"http://127.0.0.1:{port}/v2/models/{_mlserver.NAME}/infer"
        for connections, rows in loads:
            figures = load_run(
                process.pid, url, _mlserver.body(X[1000 : 1000 + rows]), connections, seconds, work, None
            )
            results[f"mlserver c={connections} rows={rows}"] = [figures]
            report(label, rows, connections, figures)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    return results


def breakdown(
    home: Path,
    starts: int,
    *,
    fresh_bytecode: bool = False,
    before: Callable[[], None] = lambda: None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Median of ``starts`` runs of :mod:`benchmarks.serving.cold_start` (the server's startup steps
    timed in a fresh process); ``fresh_bytecode`` runs them with an empty bytecode cache, as the
    first start after an install does; ``before`` runs before each start; ``env`` is theirs."""
    runs = []
    for _ in range(starts):
        before()
        options = ["-X", f"pycache_prefix={tempfile.mkdtemp()}"] if fresh_bytecode else []
        done = subprocess.run(
            [sys.executable, *options, "-m", "benchmarks.serving.cold_start", str(home), "hgb"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    steps = {name: median([r["steps"][name] for r in runs]) for name in runs[0]["steps"]}
    return {
        "steps": steps,
        "total": median([r["total"] for r in runs]),
        "rss_mb": median([r["rss_mb"] for r in runs]),
        "heavy": runs[0]["heavy"],
        "scorer": runs[0]["scorer"],
    }


def cold_starts(home: Path, work: Path, starts: int) -> None:
    """Median cold start and idle RSS over ``starts`` server starts per scorer configuration, and
    where the time goes (import, catalog, load, verify, first prediction) in the same run."""
    from fti.inference.cache import ScorerCache
    from fti.inference.manifest import SUFFIX

    cache = ScorerCache.at_home(home).directory
    figures: dict[str, tuple[float, float]] = {}
    print(f"# machine load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    warm = warm_bytecode(work)
    for scorer, manifest in (("native", False), ("fastest", False), ("fastest", True)):
        with fti.connect(home=home) as project:
            project.serving.deploy("hgb", model="hgb@production", scorer=scorer, log_requests=True)
        subprocess.run(  # compiles what this start imports into the warm cache (not timed)
            [sys.executable, "-m", "benchmarks.serving.cold_start", str(home), "hgb"],
            capture_output=True,
            check=True,
            env=warm,
        )
        colds, cpus, rss, kind = [], [], [], ""
        for i in range(starts):
            if not manifest:  # the cache as it was before manifests: native model loaded at start
                for file in cache.glob(f"*{SUFFIX}"):
                    file.unlink()
            port = free_port()
            process, cold = start_server(home, port, work / f"cold_{scorer}_{manifest}_{i}.log", warm)
            cpus.append(cpu_seconds(process.pid))  # less sensitive to other load than the wall time
            try:
                time.sleep(2)
                rss.append(rss_mb(process.pid))
                kind = httpx.get(f"http://127.0.0.1:{port}/v2/models/hgb").json()["parameters"]["scorer"]
                colds.append(cold)
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)
        label = f"{scorer} ({kind}){', from the cached manifest' if manifest else ''}"
        figures[label] = (median(colds), median(rss))
        row(
            f"[{label}] cold start (process -> 1st prediction), median of {starts}",
            s=median(colds),
            server_cpu_s=median(cpus),
        )
        row(f"[{label}] idle RSS, median of {starts}", MB=median(rss))

        def forget_manifests(manifest: bool = manifest) -> None:
            if not manifest:
                for file in cache.glob(f"*{SUFFIX}"):
                    file.unlink()

        for fresh in (False, True):
            parts = breakdown(
                home, starts, fresh_bytecode=fresh, before=forget_manifests, env=None if fresh else warm
            )
            when = "first start after install (no bytecode cache)" if fresh else "warm bytecode cache"
            row(
                f"[{label}] steps to 1st prediction, {when}",
                **{name.replace(" ", "_") + "_s": value for name, value in parts["steps"].items()},
                total_s=parts["total"],
                RSS_MB=parts["rss_mb"],
            )
            print(f"#   modules held: {', '.join(parts['heavy']) or 'none of sklearn/skops/torch/pandas'}")
    (native_cold, native_rss), *_, (cached_cold, cached_rss) = figures.values()
    row("ratio: native / cached-manifest cold start", x=native_cold / cached_cold)
    row("ratio: native / cached-manifest idle RSS", x=native_rss / cached_rss)
    print(f"# machine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15, help="duration of each load run")
    parser.add_argument("--cold-only", action="store_true", help="only cold start and idle RSS (no wrk)")
    parser.add_argument("--starts", type=int, default=3, help="server starts per config with --cold-only")
    parser.add_argument(
        "--configs",
        default="native,fastest,fastest-nolog",
        help=f"comma-separated server configurations, of {', '.join(CONFIGS)}",
    )
    parser.add_argument(
        "--loads",
        default="1x1,8x1,64x1,8x100",
        help="comma-separated wrk loads CLIENTSxROWS (connections x rows per request)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="run the configurations this many times, taking turns"
    )
    parser.add_argument("--mlserver-python", help="a Python with MLServer installed (see _mlserver.py)")
    args = parser.parse_args()
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown --configs {unknown}; choose from {list(CONFIGS)}")
    loads = [tuple(int(n) for n in load.split("x")) for load in args.loads.split(",")]
    if not args.cold_only and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

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

        # reference: raw in-process predict on one row (native and the ONNX scorer)
        from fti.inference import get_scorer

        one = X[:1]
        native_ms = median(repeat(lambda: model.predict(one), 300)) * 1000
        native_proba_ms = median(repeat(lambda: model.predict_proba(one), 300)) * 1000
        from fti.inference.native import NativeScorer

        two_pass, fused = NativeScorer(model), NativeScorer.of(model)
        assert fused.fused
        two_pass_ms = median(repeat(lambda: two_pass.predict(one), 300)) * 1000
        fused_ms = median(repeat(lambda: fused.predict(one), 300)) * 1000
        onnx = get_scorer(mv, sample=X[:200], prefer="fastest", workload="serving")
        onnx_ms = median(repeat(lambda: onnx.predict(one), 300)) * 1000
        onnx64_ms = median(repeat(lambda: onnx.predict(X[:64]), 300)) * 1000
        native64_ms = median(repeat(lambda: model.predict_proba(X[:64]), 100)) * 1000
        print(
            f"# serving benchmark: HistGradientBoostingClassifier, 20 features, {args.seconds} s per load run"
        )
        row("reference: native predict, 1 row", ms=native_ms)
        row("reference: native predict_proba, 1 row", ms=native_proba_ms)
        row("reference: native predict_proba, 64 rows", ms=native64_ms)
        row("reference: native scorer, predict + predict_proba, 1 row", ms=two_pass_ms)
        row("reference: native scorer, one fused predict_proba, 1 row", ms=fused_ms, x=two_pass_ms / fused_ms)
        row(f"reference: {onnx.kind} scorer (both outputs), 1 row", ms=onnx_ms)
        row(f"reference: {onnx.kind} scorer (both outputs), 64 rows", ms=onnx64_ms)

    if args.cold_only:
        cold_starts(home, work, args.starts)
        shutil.rmtree(work, ignore_errors=True)
        return
    results: dict[str, list[dict[str, float]]] = {}
    labels: dict[str, str] = {}
    # with --rounds the configurations take turns (A B A B ...), so a change in the machine's
    # load hits each of them alike; the ratios are of the medians
    for round_, config in ((r, c) for r in range(args.rounds) for c in configs):
        scorer, log_requests, enrich = CONFIGS[config]
        deployment = "hgb_enriched" if enrich else "hgb"
        with fti.connect(home=home) as project:
            if enrich and "hgb_enriched" not in {m.name for m in project.model_registry.list_models()}:
                _enriched.build(project, X, y, FEATURES)
            project.serving.deploy(
                deployment,
                model=f"{deployment}@production",
                enrich=enrich,
                max_batch_size=64,
                max_batch_delay_ms=2,
                scorer=scorer,
                log_requests=log_requests,
            )
        port = free_port()
        url = f"http://127.0.0.1:{port}/v2/models/{deployment}/infer"
        process, cold = start_server(home, port, work / f"server_{scorer}_{log_requests}.log")
        try:
            time.sleep(2)
            idle = rss_mb(process.pid)
            kind = httpx.get(f"http://127.0.0.1:{port}/v2/models/{deployment}").json()["parameters"]["scorer"]
            label = f"{scorer} ({kind}){'' if log_requests else ', no request log'}{', enriched' if enrich else ''}"
            if args.rounds > 1:
                label += f", round {round_ + 1}"
            labels[config] = label
            row(f"[{label}] cold start (process -> 1st prediction)", s=cold)
            row(f"[{label}] idle RSS", MB=idle)
            for connections, rows in loads:
                if enrich and rows != 1:
                    continue
                payload = _enriched.body(123) if enrich else body(X[1000 : 1000 + rows])
                figures = load_run(process.pid, url, payload, connections, args.seconds, work, port)
                results.setdefault(f"{config} c={connections} rows={rows}", []).append(figures)
                report(label, rows, connections, figures)
            row(
                f"[{label}] RSS after load",
                MB=rss_mb(process.pid),
                writer_process_MB=children_rss_mb(process.pid),
            )
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    if args.mlserver_python:
        results |= mlserver(args.mlserver_python, model, X, loads, args.seconds, work)
    else:
        print("(MLServer is not measured: pass --mlserver-python; see benchmarks/serving/_mlserver.py)")
    print(f"# machine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ratios(results, native_ms)
    shutil.rmtree(work, ignore_errors=True)


def ratios(results: dict[str, list[dict[str, float]]], native_ms: float) -> None:
    """The ratios between configurations measured in this run (where both were measured), of
    the medians over the rounds."""

    def get(config: str, clients: int, field: str) -> float | None:
        runs = results.get(f"{config} c={clients} rows=1")
        return None if runs is None else median([float(r[field]) for r in runs])

    native64, fast64 = get("native", 64, "rps"), get("fastest", 64, "rps")
    if native64 and fast64:
        row("ratio: fastest / native req/s at 64 clients", x=fast64 / native64)
    if native64:
        row(
            "ratio: native 1-row predict ms / served 64-client ms per request",
            x=native_ms / (1000 / native64),
        )
    for logged in ("native", "fastest"):
        on, off = get(logged, 64, "rps"), get(f"{logged}-nolog", 64, "rps")
        if on and off:
            row(f"ratio: {logged} request log on / off, req/s at 64 clients", x=on / off)
        on99, off99 = get(logged, 8, "p99_ms"), get(f"{logged}-nolog", 8, "p99_ms")
        if on99 is not None and off99 is not None:
            row(f"{logged}: request log p99 cost at 8 clients (on - off)", ms=on99 - off99)
        loop_on, loop_off = (
            get(logged, 64, "loop_cpu_ms_per_req"),
            get(f"{logged}-nolog", 64, "loop_cpu_ms_per_req"),
        )
        if loop_on and loop_off:
            row(
                f"ratio: {logged} request log on / off, event-loop CPU per request at 64 clients",
                x=loop_on / loop_off,
            )
    incumbent = get("mlserver", 64, "rps")
    for config in ("native", "fastest"):
        ours = get(config, 64, "rps")
        if incumbent and ours:
            row(
                f"ratio: fti {config} / MLServer with adaptive batching, req/s at 64 clients",
                x=ours / incumbent,
            )
    plain, enriched = get("fastest", 64, "rps"), get("enriched", 64, "rps")
    if plain and enriched:
        row("ratio: enriched (2 online groups) / plain req/s at 64 clients", x=enriched / plain)
        cpu = get("enriched", 64, "server_cpu_ms_per_req"), get("fastest", 64, "server_cpu_ms_per_req")
        row("enriched: server CPU per request over plain at 64 clients", ms=cpu[0] - cpu[1])  # type: ignore[operator]


if __name__ == "__main__":
    main()
