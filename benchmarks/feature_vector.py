"""Online feature vectors through ``fv.get_feature_vector(s)`` against raw ``sqlite3`` lookups.

A feature view over 2 online groups (100,000 entities, 10 features each = 20 features) with
transformations on 8 of them (scalers, log1p, bucketize, label and one-hot encoders). The
reference is what a user would write: the two wide-row primary-key selects by hand (no
transformation) on the same SQLite file. fti and the reference alternate call by call, so load
from other processes falls on both alike. p50/p99 over 2,000 calls each. Targets (issue 21): one
key p50 <= 1.5x and p99 <= 2x the reference; 100 keys <= 1.5x.

Run: .venv/bin/python -m benchmarks.feature_vector [--calls 2000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import fti
from benchmarks._report import percentile, repeat, row

KEYS = 100_000
TRANSFORMS = {
    "f0": "standard_scaler",
    "f1": "standard_scaler",
    "f2": "min_max_scaler",
    "f3": "robust_scaler",
    "g0": "standard_scaler",
    "g1": "log1p",
    "g2": "bucketize(-1, 0, 1)",
    "city": "one_hot_encoder",
    "segment": "label_encoder",
}


def wall_and_cpu(fn: Callable[[], Any], n: int) -> tuple[list[float], list[float]]:
    """Per-call wall-clock and thread CPU seconds over ``n`` calls."""
    wall, cpu = [], []
    for _ in range(n):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fti-bench-vector-"))
    project = fti.connect(home=home)
    fs = project.feature_store
    rng = np.random.default_rng(0)
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    users = fs.get_or_create_feature_group("users", primary_key=["uid"], event_time="ts", online_enabled=True)
    frame = pd.DataFrame({"uid": np.arange(KEYS), "ts": ts})
    for i in range(9):
        frame[f"f{i}"] = rng.normal(size=KEYS)
    frame["city"] = rng.choice(["paris", "rome", "oslo", "lima"], KEYS)
    users.insert(frame)
    activity = fs.get_or_create_feature_group(
        "activity", primary_key=["uid"], event_time="ts", online_enabled=True
    )
    frame = pd.DataFrame({"uid": np.arange(KEYS), "ts": ts})
    for i in range(9):
        frame[f"g{i}"] = np.abs(rng.normal(size=KEYS)) if i == 1 else rng.normal(size=KEYS)
    frame["segment"] = rng.choice(["a", "b", "c"], KEYS)
    activity.insert(frame)
    query = users.select_all(include_primary_key=False, include_event_time=False).join(
        activity.select_all(include_primary_key=False, include_event_time=False), on=["uid"]
    )
    fv = fs.get_or_create_feature_view("bench", query=query, transformations=TRANSFORMS)
    fv.create_training_data()
    fv.init_serving()
    assert len(fv.feature_names(transformed=False)) == 20

    raw = sqlite3.connect(home / "online.db", isolation_level=None, check_same_thread=False)
    tables = ['"' + g.table_name + '"' for g in (users, activity)]
    one_sql = [f"SELECT * FROM {t} WHERE uid = ?" for t in tables]
    many_sql = [f"SELECT * FROM {t} WHERE uid IN ({', '.join('?' * 100)})" for t in tables]
    rand = random.Random(0)

    def raw_one() -> None:
        key = (rand.randrange(KEYS),)
        for sql in one_sql:
            raw.execute(sql, key).fetchall()

    def raw_many() -> None:
        keys = [rand.randrange(KEYS) for _ in range(100)]
        for sql in many_sql:
            raw.execute(sql, keys).fetchall()

    def fti_one() -> None:
        fv.get_feature_vector({"uid": rand.randrange(KEYS)})

    def fti_many() -> None:
        fv.get_feature_vectors([{"uid": rand.randrange(KEYS)} for _ in range(100)])

    for fn in (raw_one, raw_many, fti_one, fti_many):  # warm caches
        repeat(fn, 300)
    print(
        f"feature vectors, 2 groups x 10 features, {KEYS:,} entities, {args.calls} calls each (ms); "
        "cpu_p99 is the thread's CPU time per call, which time slices lost to other processes on a "
        "busy machine do not inflate"
    )
    results = {}
    for size, (raw_fn, fti_fn) in (("1 key", (raw_one, fti_one)), ("100 keys", (raw_many, fti_many))):
        raw_wall, raw_cpu, fti_wall, fti_cpu = [], [], [], []
        for _ in range(args.calls):  # interleaved: a busy moment slows both alike
            for fn, wall, cpu in ((raw_fn, raw_wall, raw_cpu), (fti_fn, fti_wall, fti_cpu)):
                w, c = wall_and_cpu(fn, 1)
                wall += w
                cpu += c
        for label, wall, cpu in (
            (f"raw sqlite3, 2 selects, {size}", raw_wall, raw_cpu),
            (f"fti get_feature_vector{'s' if size != '1 key' else ''}, {size}", fti_wall, fti_cpu),
        ):
            results[label] = (percentile(wall, 50) * 1e3, percentile(wall, 99) * 1e3)
            row(
                label,
                p50_ms=results[label][0],
                p99_ms=results[label][1],
                cpu_p99_ms=percentile(cpu, 99) * 1e3,
            )
        raw_p, fti_p = list(results.values())[-2:]
        row(f"ratio fti/raw, {size}", p50=fti_p[0] / raw_p[0], p99=fti_p[1] / raw_p[1])
    project.close()


if __name__ == "__main__":
    main()
