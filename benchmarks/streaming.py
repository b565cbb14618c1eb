"""Streaming freshness and throughput: a stream pipeline's windows and the push API, end to end.

Everything runs as in production, in separate processes on loopback: a Redis server (stream,
online store and push buffer), ``fti scheduler`` running a deployed ``@fti.stream_pipeline``
(sliding 1 h and 1 d windows, count/sum/mean, 10,000 cards), ``fti serve`` for the push API.

**Stream freshness** (event appended to the Redis stream -> its aggregated row readable online):
a producer appends events at a paced rate (1k, 5k, 10k events/s by default) in 5 ms ticks; every
10 ms one of them is a *probe* for a card never seen before, and a poller reads the pending probes'
rows from the online store (``fg.online_lookup``) every millisecond, so a probe's freshness is
(first time its row was read) - (time just before its ``XADD`` was sent). p50/p99/max over the
probes, with the rate the producer reached. The reference, measured in the same run with the same
producer and poller, is a bare consumer: ``XREADGROUP`` + one ``HSET`` per event + ``XACK``, no
windows, no checkpoint, no offline buffer — the floor of this broker and store.

**Stream capacity**: a burst of events appended at once, and the time the pipeline takes to
acknowledge them all (events/s it sustains).

**Push API** (``POST /v1/feature-groups/{name}/push`` with a writer key): rows/s and request
latency at 4 concurrent clients for 1- and 100-row requests; freshness (request sent -> row read
online by another client) of single-row pushes on an idle server; and how long after the last
push the micro-batch committer has committed everything to the offline Delta table. The
reference is ``fg.push`` of the same batches in-process (no HTTP).

Run: .venv/bin/python -m benchmarks.streaming [--rates 1000,5000,10000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._report import median, percentile, row

STREAM = "bench_tx"
CARDS = 10_000
PROBE_EVERY_S = 0.010
TICK_S = 0.005
_probe_ids = itertools.count(1_000_000)

PIPELINE = """
import fti

@fti.stream_pipeline(
    source=fti.sources.RedisStream({stream!r}, group="bench_windows", url={url!r}),
    schema={{"card": "int64", "ts": "timestamp", "amount": "float64"}},
    key="card",
    event_time="ts",
    windows=[fti.window.sliding("1h"), fti.window.sliding("1d")],
    aggregations=[fti.window.count(name="tx_count"), fti.window.sum("amount"), fti.window.mean("amount")],
    allowed_lateness="1m",
)
def bench_windows(events):
    return events
"""


def fti_cli(home: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fti.cli.main", "--home", str(home), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(home / f"{args[0]}.log").open("ab"),
    )


def fields(card: int, ts: datetime) -> dict[str, str]:
    return {"card": str(card), "ts": ts.isoformat(), "amount": f"{random.uniform(1, 500):.2f}"}


def freshness(
    client: Any, stream: str, rate: int, seconds: float, visible: Callable[[list[int]], list[bool]]
) -> dict[str, float]:
    """Append ``rate`` events/s to ``stream`` for ``seconds`` with probes; the probes' freshness (ms)."""
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    done = threading.Event()
    published = [0]

    def produce() -> None:
        start = time.perf_counter()
        last_probe = 0.0
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(rate * elapsed) - published[0]
            if due > 0:
                now = datetime.now(UTC)
                pipe = client.pipeline(transaction=False)
                probe = None
                if elapsed - last_probe >= PROBE_EVERY_S:
                    probe, last_probe = next(_probe_ids), elapsed
                    pipe.xadd(stream, fields(probe, now))
                    due -= 1
                for _ in range(max(due, 0)):
                    pipe.xadd(stream, fields(random.randrange(CARDS), now))
                t_sent = time.perf_counter()
                pipe.execute()
                if probe is not None:
                    sent[probe] = t_sent
                published[0] += due + (probe is not None)
            time.sleep(TICK_S)
        published.append(int(time.perf_counter() - start))
        done.set()

    producer = threading.Thread(target=produce, name="producer")
    started = time.perf_counter()
    producer.start()
    deadline = started + seconds + 60
    while time.perf_counter() < deadline:
        pending = [p for p in list(sent) if p not in seen]
        if pending:
            for probe, ok in zip(pending, visible(pending), strict=True):
                if ok:
                    seen[probe] = time.perf_counter()
        elif done.is_set():
            break
        time.sleep(0.001)
    producer.join()
    latencies = [(seen[p] - sent[p]) * 1000 for p in sent if p in seen]
    return {
        "events_per_s": published[0] / seconds,
        "probes": len(sent),
        "missed": len(sent) - len(seen),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
    }


def raw_consumer(url: str, stream: str) -> None:
    """The reference: read through a consumer group, one HSET per event, acknowledge."""
    import redis

    client = redis.Redis.from_url(url)
    with contextlib.suppress(redis.ResponseError):
        client.xgroup_create(stream, "raw", id="0", mkstream=True)
    while True:
        found = client.xreadgroup("raw", "raw-1", {stream: ">"}, count=1000, block=100)
        for _, entries in found or []:
            pipe = client.pipeline(transaction=False)
            for _, message in entries:
                pipe.hset(f"raw:{int(message[b'card'])}", mapping=message)
            pipe.xack(stream, "raw", *(i for i, _ in entries))
            pipe.execute()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)
    return time.perf_counter() - started


def bench_stream(home: Path, url: str, env: dict[str, str], rates: list[int], seconds: float) -> None:
    import multiprocessing

    import redis

    import fti

    client = redis.Redis.from_url(url)
    print(f"\nstream pipeline freshness (appended -> readable online), {seconds:g} s per rate")
    raw_stream = STREAM + "_raw"
    consumer = multiprocessing.get_context("spawn").Process(
        target=raw_consumer, args=(url, raw_stream), daemon=True
    )
    consumer.start()

    def raw_visible(keys: list[int]) -> list[bool]:
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.exists(f"raw:{k}")
        return [bool(n) for n in pipe.execute()]

    module = home / "bench_stream.py"
    module.write_text(PIPELINE.format(stream=STREAM, url=url))
    if fti_cli(home, "pipelines", "deploy", str(module), env=env).wait() != 0:
        raise SystemExit(f"deploy failed; see {home / 'pipelines.log'}")
    scheduler = fti_cli(home, "scheduler", env=env)
    project = fti.connect(home=home)
    try:
        first = next(_probe_ids)
        client.xadd(STREAM, fields(first, datetime.now(UTC)))
        wait_for(lambda: _exists(project, "bench_windows"), "the stream pipeline's output group")
        fg = project.feature_store.get_feature_group("bench_windows")

        def fti_visible(keys: list[int]) -> list[bool]:
            return [r is not None for r in fg.online_lookup([{"card": k} for k in keys])]

        startup = wait_for(lambda: fti_visible([first])[0], "the stream service to start")
        print(f"  (service up and first event online {startup:.1f} s after deploy)")
        for rate in rates:
            ref = freshness(client, raw_stream, rate, seconds, raw_visible)
            got = freshness(client, STREAM, rate, seconds, fti_visible)
            row(
                f"  fti stream pipeline @ {rate:,}/s",
                reached=round(got["events_per_s"]),
                p50_ms=got["p50_ms"],
                p99_ms=got["p99_ms"],
                max_ms=got["max_ms"],
                probes=int(got["probes"]),
                missed=int(got["missed"]),
            )
            row(
                f"  raw XREADGROUP+HSET @ {rate:,}/s",
                reached=round(ref["events_per_s"]),
                p50_ms=ref["p50_ms"],
                p99_ms=ref["p99_ms"],
                max_ms=ref["max_ms"],
                p99_vs_raw=got["p99_ms"] / ref["p99_ms"],
            )
        burst = 50_000
        now = datetime.now(UTC)
        pipe = client.pipeline(transaction=False)
        for i in range(burst):
            pipe.xadd(STREAM, fields(random.randrange(CARDS), now + timedelta(microseconds=i)))
        pipe.execute()
        drained = wait_for(
            lambda: (
                (g := {x["name"].decode(): x for x in client.xinfo_groups(STREAM)}["bench_windows"])["lag"]
                == 0
                and g["pending"] == 0
            ),
            "the burst to be acknowledged",
            timeout=600,
        )
        row(f"  capacity: burst of {burst:,} events", seconds=drained, events_per_s=burst / drained)
    finally:
        scheduler.terminate()
        scheduler.wait(60)
        consumer.terminate()
        project.close()
        client.close()


def push_load(
    url: str, key: str, rows_per_request: int, clients: int, seconds: float
) -> tuple[int, list[float], float]:
    import httpx

    latencies: list[float] = []
    counts = [0]
    lock = threading.Lock()
    base = datetime.now(UTC)
    sequence = itertools.count()

    def work() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                n = next(sequence)
                rows = [
                    {
                        "card": random.randrange(CARDS),
                        "ts": (base + timedelta(microseconds=n * rows_per_request + i)).isoformat(),
                        "amount": random.uniform(1, 500),
                    }
                    for i in range(rows_per_request)
                ]
                t0 = time.perf_counter()
                answer = c.post("/v1/feature-groups/bench_push/push", json={"rows": rows})
                elapsed = time.perf_counter() - t0
                if answer.status_code != 200:
                    raise SystemExit(f"push failed: {answer.status_code} {answer.text}")
                with lock:
                    latencies.append(elapsed * 1000)
                    counts[0] += rows_per_request

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts[0], latencies, time.perf_counter() - started


def bench_push(home: Path, env: dict[str, str], seconds: float) -> None:
    import socket

    import httpx
    import pyarrow as pa

    import fti
    from fti.serving.auth import create_key

    print("\npush API (POST /v1/feature-groups/{name}/push, writer key, 4 clients)")
    project = fti.connect(home=home)
    fg = project.feature_store.get_or_create_feature_group(
        "bench_push",
        primary_key=["card"],
        event_time="ts",
        online_enabled=True,
        features=[
            fti.Feature("card", "int64"),
            fti.Feature("ts", "timestamp"),
            fti.Feature("amount", "float64"),
        ],
    )
    key = create_key(project, "bench_writer", "writer")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = fti_cli(home, "serve", "--port", str(port), "--no-ui", env=env)
    try:
        wait_for(lambda: _ready(url), "the server")
        for size in (1, 100):
            # the reference: the same batches pushed in-process, one thread
            batches = [
                pa.table(
                    {
                        "card": pa.array([random.randrange(CARDS) for _ in range(size)], pa.int64()),
                        "ts": pa.array(
                            [
                                datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=b * size + i)
                                for i in range(size)
                            ],
                            pa.timestamp("us", tz="UTC"),
                        ),
                        "amount": pa.array([random.uniform(1, 500) for _ in range(size)], pa.float64()),
                    }
                )
                for b in range(max(20, int(2000 / size)))
            ]
            t0 = time.perf_counter()
            for batch in batches:
                fg.push(batch)
            inproc = len(batches) * size / (time.perf_counter() - t0)
            rows, latencies, elapsed = push_load(url, key, size, 4, seconds)
            row(
                f"  HTTP push, {size} row(s)/request",
                rows_per_s=rows / elapsed,
                requests_per_s=len(latencies) / elapsed,
                p50_ms=median(latencies),
                p99_ms=percentile(latencies, 99),
                vs_in_process=rows / elapsed / inproc,
            )
            row(f"  in-process fg.push, {size} row(s)/call", rows_per_s=inproc)
        # the server's committer: every 10,000 rows or 5 s (the defaults)
        drained = wait_for(
            lambda: project.backends.buffer.stats(fg.table_name).rows == 0, "the offline commit"
        )
        row("  offline: all pushed rows committed", seconds_after_last_push=drained)
        reader = fti.connect(home=home)
        probe_fg = reader.feature_store.get_feature_group("bench_push")
        fresh: list[float] = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            for _ in range(200):
                card = next(_probe_ids)
                t0 = time.perf_counter()
                body = {"rows": [{"card": card, "ts": datetime.now(UTC).isoformat(), "amount": 1.0}]}
                if c.post("/v1/feature-groups/bench_push/push", json=body).status_code != 200:
                    raise SystemExit("push failed")
                while probe_fg.online_lookup([{"card": card}])[0] is None:
                    time.sleep(0.0005)
                fresh.append((time.perf_counter() - t0) * 1000)
        reader.close()
        row("  push freshness (sent -> read online)", p50_ms=median(fresh), p99_ms=percentile(fresh, 99))
    finally:
        server.terminate()
        server.wait(60)
        project.close()


def _exists(project: Any, name: str) -> bool:
    from fti.errors import NotFoundError

    try:
        project.feature_store.get_feature_group(name)
    except NotFoundError:
        return False
    return True


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/v2/health/live", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="1000,5000,10000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--push-seconds", type=float, default=5.0)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    from fti.testing.servers import start_redis

    base = Path(tempfile.mkdtemp(prefix="fti-bench-streaming-"))
    redis_server = start_redis(base / "redis")
    try:
        url = redis_server.url(0)
        home = base / "home"
        home.mkdir()
        env = {**os.environ, "FTI_ONLINE_URL": url, "PYTHONPATH": os.getcwd()}
        os.environ["FTI_ONLINE_URL"] = url
        print(f"Redis {url} (stream, online store, push buffer); {os.cpu_count()} CPUs")
        bench_stream(home, url, env, rates, args.seconds)
        bench_push(home, env, args.push_seconds)
    finally:
        redis_server.stop()


if __name__ == "__main__":
    main()
