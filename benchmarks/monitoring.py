"""Monitoring: a 1M-row window x 20 features against a 100k-row reference, fti against Evidently.

The data: 10 numeric features (normal, gamma, lognormal, uniform; half of them shifted in the
window) and 10 categorical ones (5 to 40 categories; half of them shifted), a reference of
``--reference`` rows on day 0 and a window of ``--rows`` rows on day 1, in one feature group.

Measured in the same run, each in its own process (so peak RSS is that process's high-water mark):

- **fti**: ``Monitor.run`` of the day-1 window: the window is read from the Delta table as a
  stream and summarized against the stored reference profile; ``auto`` tests (normalized
  Wasserstein, Jensen-Shannon: what Evidently picks for references over 1,000 rows) and then every
  applicable test (KS, PSI, Jensen-Shannon, Wasserstein; chi-squared, PSI, Jensen-Shannon), plus
  the data-quality checks; results written to ``<monitor>_results``;
- **Evidently** ``Report([DataDriftPreset()])`` on the same frames, already in memory as pandas
  (the read is not counted), when an interpreter with Evidently is given (``--evidently-python``;
  Evidently 0.7 does not import with pandas 3, so it runs from its own virtualenv);
- **scipy/numpy**, hand-written: the same ``auto`` statistics on the full arrays in memory
  (``scipy.stats.wasserstein_distance``; ``numpy.unique`` counts and
  ``scipy.spatial.distance.jensenshannon`` for the categories, where sorting the strings dominates);
- **CBPE** over 1M scores (``CbpeEstimator``) against computing the realized ROC AUC of the same
  scores (a rank over 1M rows) as the reference;
- with ``--big-rows`` (e.g. 10000000): the fti run over a window of that many rows, for memory.

Figures are medians of ``--repeat`` runs, with the ratio to Evidently (and to scipy).

Run: .venv/bin/python -m benchmarks.monitoring [--rows 1000000] [--reference 100000] [--repeat 3]
     [--big-rows 10000000] [--evidently-python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._report import row

NUMERIC = [f"n{i}" for i in range(10)]
CATEGORICAL = [f"c{i}" for i in range(10)]
DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
PIECE = 500_000


def frame(n: int, day: int, seed: int, shifted: bool) -> Any:
    """``n`` rows of day ``day`` as an Arrow table (id, ts, 10 numeric, 10 categorical)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    shift = 1.0 if shifted else 0.0
    columns: dict[str, Any] = {
        "id": pa.array(np.arange(n, dtype=np.int64) + day * 10**9 + seed * 10**7),
        "ts": pa.array(
            ((DAY0 + day * DAY).timestamp() * 1e6 + rng.uniform(0, 86_400e6, n)).astype("int64"),
            pa.timestamp("us", tz="UTC"),
        ),
    }
    for i, name in enumerate(NUMERIC):
        moved = shifted and i % 2 == 0
        kind = i % 4
        if kind == 0:
            values = rng.normal(10 + (0.4 if moved else 0), 2, n)
        elif kind == 1:
            values = rng.gamma(2.0 * (1.3 if moved else 1), 20.0, n)
        elif kind == 2:
            values = rng.lognormal(1.0 + (0.3 if moved else 0), 0.5, n)
        else:
            values = rng.uniform(0, 100 * (1.2 if moved else 1), n)
        columns[name] = pa.array(values)
    del shift
    for i, name in enumerate(CATEGORICAL):
        k = 5 + 4 * i
        p = np.linspace(1, 2, k)
        if shifted and i % 2 == 0:
            p = p[::-1] ** 2
        values = np.array([f"{name}_v{j}" for j in range(k)])[rng.choice(k, n, p=p / p.sum())]
        columns[name] = pa.array(values)
    return pa.table(columns)


def pieces(rows: int, day: int, seed: int, shifted: bool) -> Any:
    for start in range(0, rows, PIECE):
        yield frame(min(PIECE, rows - start), day, seed + start // PIECE, shifted)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- children (each measured in a fresh process) -----------------------------------------------
def child_fti(home: str, monitor: str, day: int, repeat: int) -> dict[str, Any]:
    import fti

    project = fti.connect(home=home)
    mon = project.monitoring.get_monitor(monitor)
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = mon.run(DAY0 + day * DAY, DAY0 + (day + 1) * DAY)
        times.append(time.perf_counter() - started)
    assert result is not None
    statistics_ = {
        o.column: o.statistic
        for o in result.outcomes
        if o.kind == "drift" and o.test in ("wasserstein", "jensenshannon")
    }
    return {
        "seconds": times,
        "rows": result.rows,
        "drifted": sorted(result.drifted_columns),
        "statistics": statistics_,
        "tests": len([o for o in result.outcomes]),
        "peak_rss_mb": peak_rss_mb(),
    }


def child_scipy(reference: str, current: str, repeat: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow.parquet as pq
    from scipy import stats
    from scipy.spatial import distance

    ref = pq.read_table(reference)
    cur = pq.read_table(current)
    times = []
    out: dict[str, float] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        for name in NUMERIC:
            r, c = ref.column(name).to_numpy(), cur.column(name).to_numpy()
            out[name] = float(stats.wasserstein_distance(r, c) / np.std(r))
        for name in CATEGORICAL:
            r_values, r_counts = np.unique(
                ref.column(name).to_numpy(zero_copy_only=False), return_counts=True
            )
            c_values, c_counts = np.unique(
                cur.column(name).to_numpy(zero_copy_only=False), return_counts=True
            )
            keys = np.union1d(r_values, c_values)
            rp = np.array([dict(zip(r_values, r_counts, strict=True)).get(k, 0) for k in keys], dtype=float)
            cp = np.array([dict(zip(c_values, c_counts, strict=True)).get(k, 0) for k in keys], dtype=float)
            out[name] = float(distance.jensenshannon(rp / rp.sum(), cp / cp.sum()))
        times.append(time.perf_counter() - started)
    return {"seconds": times, "statistics": out, "peak_rss_mb": peak_rss_mb()}


EVIDENTLY_SCRIPT = """
import json, sys, time, os
os.environ["DO_NOT_TRACK"] = "1"
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

reference, current, repeat, numeric, categorical = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","), sys.argv[5].split(",")
ref = pd.read_parquet(reference, columns=numeric + categorical)
cur = pd.read_parquet(current, columns=numeric + categorical)
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
times = []
for _ in range(repeat):
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    times.append(time.perf_counter() - started)
values = {}
for metric in snapshot.dict()["metrics"]:
    name = metric["metric_name"]
    if name.startswith("ValueDrift(column="):
        values[name.split("column=")[1].split(",")[0]] = float(metric["value"])
peak = 0.0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        peak = int(line.split()[1]) / 1024
print(json.dumps({"seconds": times, "statistics": values, "peak_rss_mb": peak, "version": __import__("evidently").__version__}))
"""


def child_cbpe(rows: int, repeat: int) -> dict[str, Any]:
    import numpy as np

    from fti.monitoring import performance

    rng = np.random.default_rng(1)
    reference = rng.beta(1, 6, 200_000)
    calibration = performance.calibrate(reference, rng.random(200_000) < reference)
    scores = rng.beta(1.3, 5, rows)
    labels = (rng.random(rows) < scores).astype(np.int64)
    cbpe, realized = [], []
    estimate = auc = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        estimator = performance.CbpeEstimator(calibration)
        for chunk in np.array_split(scores, max(1, rows // 65_536)):
            estimator.update(chunk)
        estimate = float(estimator.estimate()["roc_auc"] or 0.0)
        cbpe.append(time.perf_counter() - started)
        started = time.perf_counter()
        auc = float(performance.roc_auc(labels, scores) or 0.0)
        realized.append(time.perf_counter() - started)
    return {
        "cbpe": cbpe,
        "realized": realized,
        "estimated_auc": estimate,
        "realized_auc": auc,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(args: list[str], python: str = sys.executable) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-m", "benchmarks.monitoring", "--child", *args],
        capture_output=True,
        text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
        env={**os.environ, "DO_NOT_TRACK": "1"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-rows", type=int, default=0, help="also monitor a window of this many rows")
    parser.add_argument("--evidently-python", default=os.environ.get("EVIDENTLY_PYTHON"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "fti":
            out = child_fti(rest[0], rest[1], int(rest[2]), int(rest[3]))
        elif kind == "scipy":
            out = child_scipy(rest[0], rest[1], int(rest[2]))
        else:
            out = child_cbpe(int(rest[0]), int(rest[1]))
        print(json.dumps(out))
        return

    import pyarrow.parquet as pq

    import fti

    workdir = Path(tempfile.mkdtemp(prefix="fti-bench-monitoring-"))
    home = workdir / "home"
    project = fti.connect(home=home)
    fs = project.feature_store
    group = fs.get_or_create_feature_group("bench", primary_key=["id"], event_time="ts")
    started = time.perf_counter()
    reference = frame(args.reference, 0, 1, shifted=False)
    group.insert_stream([reference], "none", unique_keys=True)
    group.insert_stream(pieces(args.rows, 1, 100, shifted=True), "none", unique_keys=True)
    pq.write_table(reference.select([*NUMERIC, *CATEGORICAL]), workdir / "reference.parquet")
    with pq.ParquetWriter(
        workdir / "current.parquet", reference.select([*NUMERIC, *CATEGORICAL]).schema
    ) as writer:
        for piece in pieces(args.rows, 1, 100, shifted=True):
            writer.write_table(piece.select([*NUMERIC, *CATEGORICAL]))
    row(
        "setup: data written", seconds=time.perf_counter() - started, rows=args.rows, reference=args.reference
    )

    started = time.perf_counter()
    project.monitoring.create_monitor(
        "auto", feature_group="bench", reference=(DAY0, DAY0 + DAY), window="1d"
    )
    row("fti: reference profiled (create_monitor)", seconds=time.perf_counter() - started)
    every = {n: ["ks", "psi", "jensenshannon", "wasserstein"] for n in NUMERIC}
    every.update({c: ["chi2", "psi", "jensenshannon"] for c in CATEGORICAL})
    project.monitoring.create_monitor(
        "every", feature_group="bench", reference=(DAY0, DAY0 + DAY), window="1d", tests=every
    )

    auto = run_child(["fti", str(home), "auto", "1", str(args.repeat)])
    everything = run_child(["fti", str(home), "every", "1", str(args.repeat)])
    ref_path, cur_path = str(workdir / "reference.parquet"), str(workdir / "current.parquet")
    floor = run_child(["scipy", ref_path, cur_path, str(args.repeat)])
    evidently = None
    if args.evidently_python:
        done = subprocess.run(
            [
                args.evidently_python,
                "-c",
                EVIDENTLY_SCRIPT,
                ref_path,
                cur_path,
                str(args.repeat),
                ",".join(NUMERIC),
                ",".join(CATEGORICAL),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "DO_NOT_TRACK": "1"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"Evidently failed:\n{done.stderr}")
        evidently = json.loads(done.stdout.strip().splitlines()[-1])

    def report(label: str, result: dict[str, Any], **extra: Any) -> float:
        seconds = statistics.median(result["seconds"])
        figures: dict[str, Any] = {"median_s": seconds, "peak_rss_mb": result["peak_rss_mb"], **extra}
        if evidently is not None:
            figures["vs_evidently"] = statistics.median(evidently["seconds"]) / seconds
        figures["vs_scipy"] = statistics.median(floor["seconds"]) / seconds
        row(label, **figures)
        return seconds

    print(
        f"\n{args.rows:,} rows x 20 features (10 numeric, 10 categorical) against {args.reference:,} reference rows"
    )
    report("fti Monitor.run, auto tests", auto, cold_s=auto["seconds"][0], drifted=len(auto["drifted"]))
    report("fti Monitor.run, every test + checks", everything, outcomes=everything["tests"])
    report("scipy/numpy by hand (all values in memory)", floor)
    if evidently is not None:
        report(f"Evidently {evidently['version']} DataDriftPreset", evidently)
        gaps = [
            abs(auto["statistics"][c] - v)
            for c, v in evidently["statistics"].items()
            if c in auto["statistics"]
        ]
        row("agreement with Evidently", columns=len(gaps), max_abs_diff=f"{max(gaps):.1e}" if gaps else "n/a")
    else:
        print("Evidently: not measured (pass --evidently-python; Evidently 0.7 needs pandas < 3)")
    gaps = [abs(auto["statistics"][c] - v) for c, v in floor["statistics"].items()]
    row("agreement with scipy on all values", columns=len(gaps), max_abs_diff=f"{max(gaps):.1e}")

    cbpe = run_child(["cbpe", str(args.rows), str(args.repeat)])
    row(
        f"CBPE over {args.rows:,} scores",
        median_s=statistics.median(cbpe["cbpe"]),
        realized_auc_s=statistics.median(cbpe["realized"]),
        estimated_auc=cbpe["estimated_auc"],
        realized_auc=cbpe["realized_auc"],
    )

    if args.big_rows:
        started = time.perf_counter()
        group.insert_stream(pieces(args.big_rows, 2, 10_000, shifted=True), "none", unique_keys=True)
        row("setup: big window written", seconds=time.perf_counter() - started, rows=args.big_rows)
        big = run_child(["fti", str(home), "auto", "2", "1"])
        row(
            f"fti Monitor.run over {args.big_rows:,} rows",
            seconds=big["seconds"][0],
            peak_rss_mb=big["peak_rss_mb"],
            rows=big["rows"],
        )
    project.close()


if __name__ == "__main__":
    main()
