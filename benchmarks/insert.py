"""Insert 2M rows (100k keys, 10 numeric features) into an online-enabled feature group.

Reference, measured in the same run on the same frame: a raw ``deltalake.write_deltalake`` plus a
raw DuckDB latest-per-key query (sorted by key) plus ``sqlite3.executemany`` into a keyed table.
Reports offline rows/s, online entities/s and the end-to-end ratio to the reference (target <= 1.5x).

When Feast is available (``--feast-python``, see :mod:`benchmarks._feast`), its online
materialization of the same rows from a Parquet file is timed once too (it takes tens of seconds).

Run: .venv/bin/python -m benchmarks.insert [--rows 2000000] [--keys 100000] [--repeat 3]
     [--feast-python VENV/bin/python]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

import fti
from benchmarks import _feast
from benchmarks._report import median, row, timed


def make_frame(rows: int, keys: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = {
        "entity_id": rng.integers(0, keys, rows),
        "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(rows), unit="s"),
    }
    for i in range(10):
        data[f"f{i}"] = rng.normal(size=rows)
    return pd.DataFrame(data)


def reference(frame: pd.DataFrame, workdir: Path) -> tuple[float, float]:
    from deltalake import write_deltalake

    table = pa.Table.from_pandas(frame, preserve_index=False)
    offline = timed(lambda: write_deltalake(str(workdir / "ref_delta"), table, mode="append"))

    def online() -> None:
        con = duckdb.connect()
        con.register("data", table)
        latest = con.sql(
            "SELECT entity_id, epoch_us(ts) AS ts, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 FROM data "
            "QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY ts DESC) = 1 "
            "ORDER BY entity_id"  # in key order, SQLite's B-tree inserts go 3x faster
        ).fetchall()
        db = sqlite3.connect(workdir / "ref_online.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        cols = ", ".join(f"f{i} REAL" for i in range(10))
        db.execute(f"CREATE TABLE t (entity_id INTEGER PRIMARY KEY, ts INTEGER, {cols})")
        db.execute("BEGIN")
        db.executemany(f"INSERT OR REPLACE INTO t VALUES ({', '.join('?' * 12)})", latest)
        db.execute("COMMIT")
        db.close()

    return offline, timed(online)


def run_fti(frame: pd.DataFrame, workdir: Path) -> tuple[float, float, float]:
    project = fti.connect(home=workdir / "home")
    fs = project.feature_store
    offline_only = fs.get_or_create_feature_group("offline_only", primary_key=["entity_id"], event_time="ts")
    offline = timed(lambda: offline_only.insert(frame))
    online_fg = fs.get_or_create_feature_group(
        "online", primary_key=["entity_id"], event_time="ts", online_enabled=True
    )
    total = timed(lambda: online_fg.insert(frame))
    # Online materialization alone: drop the online copy and catch up from the offline table.
    project.backends.online.delete_table(online_fg.table_name)
    materialize = timed(online_fg.materialize)
    project.close()
    return offline, total, materialize


def feast_child(source: Path) -> None:
    """Feast's materialization of ``source``/rows.parquet into its SQLite online store, timed;
    prints one JSON line."""
    import json

    features = [f"f{i}" for i in range(10)]
    sources = {"online": (source / "rows.parquet", features, dict.fromkeys(features, "Float64"))}
    store = _feast.online_store(source / "repo", sources, key="entity_id")
    seconds = timed(lambda: _feast.materialize(store))
    print(json.dumps({"materialize_s": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--feast-python", help="a Python with Feast installed (see benchmarks._feast)")
    parser.add_argument("--feast-child", metavar="SOURCE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.feast_child:
        feast_child(Path(args.feast_child))
        return
    frame = make_frame(args.rows, args.keys)
    refs, fti_runs = [], []
    for _ in range(args.repeat):
        workdir = Path(tempfile.mkdtemp(prefix="fti-bench-insert-"))
        try:
            refs.append(reference(frame, workdir))
            fti_runs.append(run_fti(frame, workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    ref_off = median([r[0] for r in refs])
    ref_on = median([r[1] for r in refs])
    off = median([r[0] for r in fti_runs])
    total = median([r[1] for r in fti_runs])
    mat = median([r[2] for r in fti_runs])
    print(f"insert {args.rows:,} rows, {args.keys:,} keys, 10 features; medians of {args.repeat} runs")
    row("reference write_deltalake", s=ref_off, rows_per_s=args.rows / ref_off)
    row("reference duckdb latest + sqlite executemany", s=ref_on, entities_per_s=args.keys / ref_on)
    row("fti insert, offline-only group", s=off, rows_per_s=args.rows / off, ratio=off / ref_off)
    row("fti materialize (online catch-up)", s=mat, entities_per_s=args.keys / mat, ratio=mat / ref_on)
    row("fti insert, online-enabled (end to end)", s=total, rows_per_s=args.rows / total)
    row("end-to-end ratio to reference", ratio=total / (ref_off + ref_on))
    python = _feast.interpreter(args.feast_python)
    if python is None:
        print("(Feast is not available: pass --feast-python to measure it; see benchmarks/_feast.py)")
        return
    source = Path(tempfile.mkdtemp(prefix="fti-bench-insert-feast-"))
    try:
        frame.to_parquet(source / "rows.parquet", index=False)
        seconds = _feast.run(python, "benchmarks.insert", "--feast-child", str(source))["materialize_s"]
    finally:
        shutil.rmtree(source, ignore_errors=True)
    row(
        "feast materialize (one run)",
        s=seconds,
        entities_per_s=args.keys / seconds,
        ratio_to_fti=seconds / mat,
    )


if __name__ == "__main__":
    main()
