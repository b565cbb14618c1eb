"""Online feature vectors through ``fv.get_feature_vector(s)`` against raw ``sqlite3`` lookups.

A feature view over 2 online groups (100,000 entities, 10 features each = 20 features) with
transformations on 8 of them (scalers, log1p, bucketize, label and one-hot encoders). The
reference is what a user would write: the two wide-row primary-key selects by hand (no
transformation) on the same SQLite file. fti and the reference alternate call by call, so load
from other processes falls on both alike. p50/p99 over 2,000 calls each. Targets (issue 21): one
key p50 <= 1.5x and p99 <= 2x the reference; 100 keys <= 1.5x.

Feast's ``get_online_features`` over the same rows (its own SQLite online store, materialized
from Parquet files of the same frames) is measured too when Feast is available, against the same
raw selects in its process: see :mod:`benchmarks._feast`.

Run: .venv/bin/python -m benchmarks.feature_vector [--calls 2000] [--feast-python VENV/bin/python]
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
from benchmarks import _feast
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


def interleaved(pairs: tuple[Callable[[], Any], Callable[[], Any]], calls: int) -> list[list[float]]:
    """Wall seconds of each call of both functions, alternating call by call (a busy moment slows
    both alike): [first's walls, first's CPU, second's walls, second's CPU]."""
    out: list[list[float]] = [[], [], [], []]
    for _ in range(calls):
        for i, fn in enumerate(pairs):
            wall, cpu = wall_and_cpu(fn, 1)
            out[2 * i] += wall
            out[2 * i + 1] += cpu
    return out


def raw_lookups(db: Path, tables: list[str]) -> tuple[Callable[[], None], Callable[[], None]]:
    """The reference: the groups' wide rows of one random key, and of 100, by hand."""
    raw = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    quoted = ['"' + t + '"' for t in tables]
    one_sql = [f"SELECT * FROM {t} WHERE uid = ?" for t in quoted]
    many_sql = [f"SELECT * FROM {t} WHERE uid IN ({', '.join('?' * 100)})" for t in quoted]
    rand = random.Random(0)

    def raw_one() -> None:
        key = (rand.randrange(KEYS),)
        for sql in one_sql:
            raw.execute(sql, key).fetchall()

    def raw_many() -> None:
        keys = [rand.randrange(KEYS) for _ in range(100)]
        for sql in many_sql:
            raw.execute(sql, keys).fetchall()

    return raw_one, raw_many


def feast_child(source: Path, db: Path, tables: list[str], calls: int) -> None:
    """Feast's lookups of the same rows against the same raw selects, in Feast's interpreter;
    prints one JSON line of p50/p99 (ms) per case."""
    import json

    kinds = {f"f{i}": "Float64" for i in range(9)} | {f"g{i}": "Float64" for i in range(9)}
    kinds |= {"city": "String", "segment": "String"}
    sources = {
        name: (
            source / f"{name}.parquet",
            [c for c in pd.read_parquet(source / f"{name}.parquet").columns if c in kinds],
            kinds,
        )
        for name in ("users", "activity")
    }
    store = _feast.online_store(source / "repo", sources)
    _feast.materialize(store)
    features = [f"{name}:{f}" for name, (_, names, _) in sources.items() for f in names]
    rand = random.Random(1)

    def feast_one() -> None:
        store.get_online_features(features=features, entity_rows=[{"uid": rand.randrange(KEYS)}]).to_dict()

    def feast_many() -> None:
        rows = [{"uid": rand.randrange(KEYS)} for _ in range(100)]
        store.get_online_features(features=features, entity_rows=rows).to_dict()

    raw_one, raw_many = raw_lookups(db, tables)
    assert len(store.get_online_features(features=features, entity_rows=[{"uid": 7}]).to_dict()) == 21
    out = {}
    for size, pair in (("1 key", (raw_one, feast_one)), ("100 keys", (raw_many, feast_many))):
        for fn in pair:
            repeat(fn, 50)  # warm caches
        raw_wall, _, feast_wall, _ = interleaved(pair, calls if size == "1 key" else calls // 4)
        out[size] = {
            "raw": [percentile(raw_wall, 50) * 1e3, percentile(raw_wall, 99) * 1e3],
            "feast": [percentile(feast_wall, 50) * 1e3, percentile(feast_wall, 99) * 1e3],
        }
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--feast-python", help="a Python with Feast installed (see benchmarks._feast)")
    parser.add_argument("--feast-child", nargs=2, metavar=("SOURCE", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.feast_child:
        source, home_dir = map(Path, args.feast_child)
        feast_child(source, home_dir / "online.db", (source / "tables").read_text().split(), args.calls)
        return
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
    frames = {"users": frame}
    activity = fs.get_or_create_feature_group(
        "activity", primary_key=["uid"], event_time="ts", online_enabled=True
    )
    frame = pd.DataFrame({"uid": np.arange(KEYS), "ts": ts})
    for i in range(9):
        frame[f"g{i}"] = np.abs(rng.normal(size=KEYS)) if i == 1 else rng.normal(size=KEYS)
    frame["segment"] = rng.choice(["a", "b", "c"], KEYS)
    activity.insert(frame)
    frames["activity"] = frame
    query = users.select_all(include_primary_key=False, include_event_time=False).join(
        activity.select_all(include_primary_key=False, include_event_time=False), on=["uid"]
    )
    fv = fs.get_or_create_feature_view("bench", query=query, transformations=TRANSFORMS)
    fv.create_training_data()
    fv.init_serving()
    assert len(fv.feature_names(transformed=False)) == 20

    tables = [g.table_name for g in (users, activity)]
    raw_one, raw_many = raw_lookups(home / "online.db", tables)
    rand = random.Random(0)

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
    measured = {}
    for size, pair in (("1 key", (raw_one, fti_one)), ("100 keys", (raw_many, fti_many))):
        raw_wall, raw_cpu, fti_wall, fti_cpu = interleaved(pair, args.calls)
        for label, wall, cpu in (
            (f"raw sqlite3, 2 selects, {size}", raw_wall, raw_cpu),
            (f"fti get_feature_vector{'s' if size != '1 key' else ''}, {size}", fti_wall, fti_cpu),
        ):
            row(
                label,
                p50_ms=percentile(wall, 50) * 1e3,
                p99_ms=percentile(wall, 99) * 1e3,
                cpu_p99_ms=percentile(cpu, 99) * 1e3,
            )
        ratio = (
            percentile(fti_wall, 50) / percentile(raw_wall, 50),
            percentile(fti_wall, 99) / percentile(raw_wall, 99),
        )
        measured[size] = ratio
        row(f"ratio fti/raw, {size}", p50=ratio[0], p99=ratio[1])
    project.close()
    python = _feast.interpreter(args.feast_python)
    if python is None:
        print("(Feast is not available: pass --feast-python to measure it; see benchmarks/_feast.py)")
        return
    source = home / "feast"
    source.mkdir()
    for name, frame in frames.items():
        frame.to_parquet(source / f"{name}.parquet", index=False)
    (source / "tables").write_text(" ".join(tables))
    feast = _feast.run(
        python,
        "benchmarks.feature_vector",
        "--feast-child",
        str(source),
        str(home),
        "--calls",
        str(args.calls),
    )
    for size, figures in feast.items():
        (raw_50, raw_99), (feast_50, feast_99) = figures["raw"], figures["feast"]
        row(f"feast get_online_features, {size}", p50_ms=feast_50, p99_ms=feast_99)
        row(f"ratio feast/raw, {size} (its own run)", p50=feast_50 / raw_50, p99=feast_99 / raw_99)
        fti_ratio = measured[size]
        row(
            f"feast/fti via the raw reference, {size}",
            p50=feast_50 / raw_50 / fti_ratio[0],
            p99=feast_99 / raw_99 / fti_ratio[1],
        )


if __name__ == "__main__":
    main()
