"""Commit statistics of a 10k-row append into a 2M-row feature group: incremental (merge the
append's sketches into the stored state of the previous version) against the full recomputation
over the table that every commit paid before (issue 20), measured in the same run.

Also: the full computation alone (``compute_statistics``, DuckDB, over the 2M rows), the one-off
cost of building a fresh state over the table (paid by the first append that finds none), and an
append's end-to-end ``insert`` with and without statistics.

Run: .venv/bin/python -m benchmarks.statistics [--rows 2000000] [--append 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import fti
from benchmarks._report import median, row, timed
from fti.features import commit, group_statistics, ingestion, records
from fti.features.statistics import compute_statistics
from fti.features.statistics_state import TableState


def make_frame(rows: int, start: int, seed: int) -> pd.DataFrame:
    """An inference-log-like table: a key, an event time, 8 numeric features, a category, a flag."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "request_id": np.arange(start, start + rows),
        "ts": pd.Timestamp("2024-01-01", tz="UTC")
        + pd.to_timedelta(np.arange(start, start + rows), unit="s"),
    }
    for i in range(8):
        data[f"f{i}"] = rng.normal(i, 1 + i, rows)
    data["category"] = rng.choice([f"c{i}" for i in range(50)], rows)
    data["flag"] = rng.random(rows) < 0.1
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--append", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fti-bench-statistics-"))
    try:
        project = fti.connect(home=workdir / "home")
        fg = project.feature_store.get_or_create_feature_group(
            "log", primary_key=["request_id"], event_time="ts"
        )
        fg.insert(make_frame(args.rows, 0, 0), write_mode="append", statistics=False)
        offline, catalog = project.backends.offline, project.backends.catalog

        full_base = [timed(lambda: compute_statistics(offline.dataset(fg.table_name, version=0)))]
        fresh: list[float] = []
        for _ in range(args.repeat - 1):
            full_base.append(timed(lambda: compute_statistics(offline.dataset(fg.table_name, version=0))))
        for _ in range(max(1, args.repeat // 2)):
            fresh.append(timed(lambda: TableState.of(offline.dataset(fg.table_name, version=0))))
        state = TableState.of(offline.dataset(fg.table_name, version=0))
        records.save_statistics_state(catalog, fg.id, 0, state.to_bytes())

        incremental, full, with_stats, without_stats = [], [], [], []
        start = args.rows
        for r in range(args.repeat):
            table, _ = ingestion.prepare(fg, make_frame(args.append, start, r + 1))
            start += args.append
            version = offline.write(fg.table_name, table)  # the append's commit alone
            incremental.append(
                timed(lambda t=table, v=version: group_statistics.at_commit(fg, t, v, merged=False))
            )
            full.append(
                timed(lambda v=version: compute_statistics(offline.dataset(fg.table_name, version=v)))
            )
            commit.record(fg, version, "insert", table.num_rows, "none", None)
        # end to end: checks, commit, record (and statistics); those with statistics first, as a
        # commit without them leaves no state for the next append to merge into
        for r in range(args.repeat):
            frame = make_frame(args.append, start, 100 + r)
            start += args.append
            with_stats.append(timed(lambda f=frame: fg.insert(f, write_mode="append")))
        for r in range(args.repeat):
            frame = make_frame(args.append, start, 200 + r)
            start += args.append
            without_stats.append(timed(lambda f=frame: fg.insert(f, write_mode="append", statistics=False)))
        stored = records.statistics_state(catalog, fg.id)
        size = 0 if stored is None else len(stored[1])
        project.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    inc, ref = median(incremental), median(full)
    print(
        f"statistics of a {args.append:,}-row append into a {args.rows:,}-row group "
        f"(12 columns); medians of {args.repeat} runs"
    )
    row(f"full compute_statistics, {args.rows:,} rows", s=median(full_base))
    row("commit statistics, full recompute (before)", s=ref)
    row("commit statistics, incremental", s=inc, ratio=inc / ref, speedup=ref / inc)
    row(f"fresh state over {args.rows:,} rows (once)", s=median(fresh))
    row("insert append, incremental statistics", s=median(with_stats))
    row("insert append, statistics=False", s=median(without_stats))
    row("stored state", bytes=size)


if __name__ == "__main__":
    main()
