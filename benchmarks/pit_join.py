"""Point-in-time join of a feature view against a hand-written DuckDB ``ASOF JOIN``.

Spine: 1,000,000 rows; two joined groups of 1,000,000 rows each over 100,000 keys with 10
features each (20 features). Both sides read the same Delta snapshots as Arrow datasets in the
same run; the reference is the plain two-way ``ASOF LEFT JOIN``. Training data also orders the rows
(spine event time, key) so it is deterministic; ``get_batch_data(order=False)`` skips that sort. The
reference is timed with and without an ``ORDER BY``. Target (issue 3): <= 1.2x the raw query.

Run: .venv/bin/python -m benchmarks.pit_join [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import resource
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

import fti
from benchmarks._report import median, row, timed
from fti._duckdb import connect, fetch_arrow
from fti.features import pit, training_data
from fti.storage.offline.scan import as_dataset

DATA = Path(__file__).parent / ".data" / "pit_join"
KEYS = 100_000
YEAR_S = 365 * 24 * 3600


def frame(rng: np.random.Generator, n: int, prefix: str, label: bool = False) -> pd.DataFrame:
    start = pd.Timestamp("2024-01-01", tz="UTC")
    data = pd.DataFrame(
        {
            "cc_num": rng.integers(0, KEYS, n),
            "ts": start + pd.to_timedelta(rng.integers(0, YEAR_S, n), unit="s"),
        }
    ).drop_duplicates(["cc_num", "ts"])
    if label:
        data.insert(0, "tid", np.arange(len(data)))
        data["amount"] = rng.normal(50, 20, len(data))
        data["is_fraud"] = rng.integers(0, 2, len(data))
    else:
        for i in range(10):
            data[f"{prefix}{i}"] = rng.normal(size=len(data))
    return data


def build(home: Path, rows: int) -> fti.Project:
    marker = home / f"ready-{rows}"
    if not marker.exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
    project = fti.connect(home=home)
    fs = project.feature_store
    if not marker.exists():
        rng = np.random.default_rng(0)
        spine = fs.get_or_create_feature_group("tx", primary_key=["tid"], event_time="ts")
        spine.insert(frame(rng, rows, "", label=True))
        for name in ("a", "b"):
            fs.get_or_create_feature_group(name, primary_key=["cc_num"], event_time="ts").insert(
                frame(rng, rows, f"{name}_")
            )
        marker.touch()
    return project


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    project = build(DATA, args.rows)
    fs = project.feature_store
    tx, a, b = (fs.get_feature_group(n) for n in ("tx", "a", "b"))
    query = (
        tx.select(["cc_num", "amount", "is_fraud"])
        .join(a.select_all(include_primary_key=False, include_event_time=False), on=["cc_num"])
        .join(b.select_all(include_primary_key=False, include_event_time=False), on=["cc_num"])
    )
    snapshot, _ = training_data.snapshot(query, project.backends.offline)
    datasets = [as_dataset(source) for source in snapshot]  # what DuckDB is given

    a_cols = ", ".join(f"a.a_{i}" for i in range(10))
    b_cols = ", ".join(f"b.b_{i}" for i in range(10))
    raw_sql = (
        f"SELECT s.tid, s.ts, s.cc_num, s.amount, s.is_fraud, {a_cols}, {b_cols} FROM s "
        "ASOF LEFT JOIN a ON s.cc_num = a.cc_num AND s.ts >= a.ts "
        "ASOF LEFT JOIN b ON s.cc_num = b.cc_num AND s.ts >= b.ts"
    )

    def raw(order: bool) -> int:
        con = connect()
        con.execute("SET TimeZone = 'UTC'")
        # the spine as an in-memory table: DuckDB's ASOF join crawls on a streaming probe side
        con.register("s", datasets[0].to_table())
        con.register("a", datasets[1])
        con.register("b", datasets[2])
        result = fetch_arrow(con, raw_sql + (" ORDER BY s.ts, s.tid" if order else ""))
        con.close()
        return int(result.num_rows)

    def fti_join(order: bool) -> int:
        return int(pit.run(query, snapshot, order=order).num_rows)

    assert raw(False) == fti_join(True) == datasets[0].count_rows()
    print(
        f"point-in-time join: spine {datasets[0].count_rows():,} rows, 2 groups x "
        f"{datasets[1].count_rows():,} rows, {KEYS:,} keys, 20 features ({args.repeat} runs, seconds)"
    )
    runs = (
        ("raw DuckDB ASOF JOIN", lambda: raw(False)),
        ("raw DuckDB ASOF JOIN + ORDER BY", lambda: raw(True)),
        ("fti pit.run (ordered, training data)", lambda: fti_join(True)),
        ("fti pit.run (unordered, batch order=False)", lambda: fti_join(False)),
    )
    times: dict[str, list[float]] = {label: [] for label, _ in runs}
    for _ in range(args.repeat):  # interleaved, so background load hits every variant alike
        for label, fn in runs:
            times[label].append(timed(fn))
    results = {label: median(values) for label, values in times.items()}
    best = {label: min(values) for label, values in times.items()}
    for label, value in results.items():
        row(label, median_s=value, min_s=best[label], runs=" ".join(f"{t:.2f}" for t in times[label]))
    for fti_label, reference in (
        ("fti pit.run (unordered, batch order=False)", "raw DuckDB ASOF JOIN"),
        ("fti pit.run (ordered, training data)", "raw DuckDB ASOF JOIN + ORDER BY"),
        ("fti pit.run (ordered, training data)", "raw DuckDB ASOF JOIN"),
    ):
        row(
            f"ratio {fti_label.split('(')[1].split(',')[0]} / {reference.removeprefix('raw DuckDB ')}",
            median=results[fti_label] / results[reference],
            min=best[fti_label] / best[reference],
        )
    row("peak RSS of the process", mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    project.close()


if __name__ == "__main__":
    main()
