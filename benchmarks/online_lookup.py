"""Online lookups through ``fg.online_lookup`` against a raw ``sqlite3`` primary-key query.

Both read the same SQLite file (the group's online table), 1 key and 100 keys per call, p50/p99
over 2,000 calls. Targets (issue 2): p99 <= 2x raw, and <= 0.1 ms for one key.

Run: .venv/bin/python -m benchmarks.online_lookup [--calls 2000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import fti
from benchmarks._report import percentile, repeat, row

KEYS = 100_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fti-bench-lookup-"))
    project = fti.connect(home=home)
    fg = project.feature_store.get_or_create_feature_group(
        "entities", primary_key=["entity_id"], event_time="ts", online_enabled=True
    )
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"entity_id": np.arange(KEYS), "ts": pd.Timestamp("2024-01-01", tz="UTC")})
    for i in range(10):
        frame[f"f{i}"] = rng.normal(size=KEYS)
    fg.insert(frame)

    raw = sqlite3.connect(home / "online.db", isolation_level=None, check_same_thread=False)
    table = '"' + fg.table_name + '"'
    one_sql = f"SELECT * FROM {table} WHERE entity_id = ?"
    many_sql = f"SELECT * FROM {table} WHERE entity_id IN ({', '.join('?' * 100)})"
    rand = random.Random(0)

    def raw_one() -> None:
        raw.execute(one_sql, (rand.randrange(KEYS),)).fetchall()

    def raw_many() -> None:
        raw.execute(many_sql, [rand.randrange(KEYS) for _ in range(100)]).fetchall()

    def fti_one() -> None:
        fg.online_lookup([{"entity_id": rand.randrange(KEYS)}])

    def fti_many() -> None:
        fg.online_lookup([{"entity_id": rand.randrange(KEYS)} for _ in range(100)])

    for fn in (raw_one, raw_many, fti_one, fti_many):  # warm caches
        repeat(fn, 200)
    print(f"online lookups, {KEYS:,} entities x 10 features, {args.calls} calls each (ms)")
    results = {}
    for label, fn in (
        ("raw sqlite3 1 key", raw_one),
        ("fti online_lookup 1 key", fti_one),
        ("raw sqlite3 100 keys", raw_many),
        ("fti online_lookup 100 keys", fti_many),
    ):
        lat = repeat(fn, args.calls)
        results[label] = (percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3)
        row(label, p50_ms=results[label][0], p99_ms=results[label][1])
    for n in ("1 key", "100 keys"):
        ratio = results[f"fti online_lookup {n}"][1] / results[f"raw sqlite3 {n}"][1]
        row(f"p99 ratio fti/raw, {n}", ratio=ratio)
    project.close()


if __name__ == "__main__":
    main()
