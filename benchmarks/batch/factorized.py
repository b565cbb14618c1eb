"""Factorized batch scoring against materialize-then-predict, in the same run (issue 21).

Data: a spine feature group of ``--spine`` rows (default 10,000,000: key, event time, two foreign
keys, a label) joined point-in-time with two feature groups of ``--group-rows`` rows each
(default 100,000: 50,000 keys x 2 versions) of 50 float64 features each; a standard scaler on
ten features of each group (folded into the weights on the factorized path). Model: a
LogisticRegression trained on the view's first 200,000 rows and registered from it.

Measured, alternating, ``--repeat`` times, each run in a fresh process (so its peak RSS is its own):

* ``fti.batch.score(..., prefer="factorized")``: per-group-row partial scores, the narrow
  point-in-time join of those, the model's link, predictions written to a feature group;
* ``fti.batch.score(..., prefer="native")``: the wide point-in-time join streamed in chunks, the
  model's own ``predict_proba``, the same predictions written.

Printed: the median seconds of each, the speed-up, peak RSS, and the largest difference between
the two runs' probabilities (they must agree to 1e-9). Figures from a machine shared with other
jobs vary; the ratio is from one run.

Run: .venv/bin/python -m benchmarks.batch.factorized [--spine 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import fti
from benchmarks._report import median, peak_rss_mb, row, run_child

DATA = Path(__file__).resolve().parents[1] / ".data" / "factorized"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
WIDTH = 50
MODES = ("factorized", "native")


def make_data(project: fti.Project, spine_rows: int, group_rows: int) -> Any:
    """The spine, the two groups and the view (reused when an earlier run built them)."""
    fs = project.feature_store
    keys = group_rows // 2
    groups = []
    for g in (1, 2):
        group = fs.get_or_create_feature_group(f"g{g}", primary_key=[f"k{g}"], event_time="ts")
        if group.latest_commit_version() is None:
            rng = np.random.default_rng(g)
            frame = pd.DataFrame(rng.normal(size=(group_rows, WIDTH)), columns=_names(g))
            frame.insert(0, f"k{g}", np.tile(np.arange(keys, dtype=np.int64), 2))
            # version 1 at T0, version 2 a day later: the join must pick by time
            frame.insert(1, "ts", [T0 if i < keys else T0 + timedelta(days=1) for i in range(group_rows)])
            frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("us")
            group.insert(frame, validation="none")
        groups.append(group)
    spine = fs.get_or_create_feature_group("spine", primary_key=["id"], event_time="ts")
    if spine.latest_commit_version() is None:
        started = time.perf_counter()
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(
            {
                "id": np.arange(spine_rows, dtype=np.int64),
                "ts": pd.to_datetime(
                    int(T0.timestamp()) * 1_000_000
                    + np.arange(spine_rows, dtype=np.int64) * _step(spine_rows),
                    unit="us",
                    utc=True,
                ),
                "k1": rng.integers(0, keys, spine_rows, dtype=np.int64),
                "k2": rng.integers(0, keys, spine_rows, dtype=np.int64),
                "label": rng.integers(0, 2, spine_rows, dtype=np.int64),
            }
        )
        spine.insert(frame, validation="none")
        row("data: insert the spine", rows=spine_rows, seconds=time.perf_counter() - started)
    elif spine.read_arrow(columns=["id"]).num_rows != spine_rows:
        raise SystemExit(f"{DATA} holds a spine of another size; delete it or pass --spine to match")
    query = (
        spine.select(["label"])
        .join(groups[0].select(_names(1)), on=["k1"])
        .join(groups[1].select(_names(2)), on=["k2"])
    )
    scaled = {name: "standard_scaler" for g in (1, 2) for name in _names(g)[:10]}
    return fs.get_or_create_feature_view("wide", query=query, labels=["label"], transformations=scaled)


def _step(spine_rows: int) -> int:
    """Microseconds between spine rows: they span two days (each group changes after the first)."""
    return max(1, 2 * 86_400_000_000 // spine_rows)


def _names(group: int) -> list[str]:
    return [f"g{group}_f{i:02d}" for i in range(WIDTH)]


def fit_model(project: fti.Project, fv: Any, spine_rows: int) -> None:
    from sklearn.linear_model import LogisticRegression

    mr = project.model_registry
    if "linear" in {m.name for m in mr.list_models()}:
        return
    end = T0 + timedelta(microseconds=min(200_000, spine_rows) * _step(spine_rows))
    version, rows = fv.create_training_data(end_time=end)  # the first 200,000 rows
    names = fv.feature_names(training_dataset_version=version)
    rng = np.random.default_rng(1)
    weights = rng.normal(size=len(names))
    labels = (rows[names].to_numpy() @ weights + rng.normal(size=len(rows)) > 0).astype(np.int64)
    model = LogisticRegression(max_iter=300).fit(rows[names], labels)
    mr.register("linear", model, feature_view=fv, training_dataset_version=version)


def child(home: Path, mode: str) -> None:
    """One measured run in this fresh process; prints its figures as JSON."""
    project = fti.connect(home=home, project="bench")
    output = f"predictions_{mode}"
    with contextlib.suppress(fti.NotFoundError):  # a previous run's output: start from nothing
        project.feature_store.get_feature_group(output).delete()
    started = time.perf_counter()
    result = fti.batch.score(project, "linear", output=output, prefer=mode)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {"rows": result.rows, "seconds": seconds, "scorer": result.scorer, "peak_rss_mb": peak_rss_mb()}
        )
    )


def largest_difference(project: fti.Project) -> float:
    """The largest |proba_1 factorized - proba_1 materialized| over all rows, matched by id."""
    fs = project.feature_store
    frames = [
        fs.get_feature_group(f"predictions_{mode}").read_arrow(columns=["id", "proba_1"]).to_pandas()
        for mode in MODES
    ]
    merged = frames[0].merge(frames[1], on="id", suffixes=("_f", "_m"))
    assert len(merged) == len(frames[0]) == len(frames[1])
    return float(np.max(np.abs(merged["proba_1_f"].to_numpy() - merged["proba_1_m"].to_numpy())))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spine", type=int, default=10_000_000)
    parser.add_argument("--group-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    home = args.home or DATA / f"home_{args.spine}_{args.group_rows}"
    if args.child:
        child(home, args.child)
        return
    project = fti.connect(home=home, project="bench")
    fv = make_data(project, args.spine, args.group_rows)
    fit_model(project, fv, args.spine)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):
        for mode in MODES:  # alternating, so a change in the machine's load hits both
            runs[mode].append(run_child("benchmarks.batch.factorized", "--child", mode, "--home", str(home)))
    figures = {}
    for mode in MODES:
        seconds = median([r["seconds"] for r in runs[mode]])
        peak = max(r["peak_rss_mb"] for r in runs[mode])
        figures[mode] = (seconds, peak)
        label = "factorized" if mode == "factorized" else "materialize then predict (native)"
        row(
            label,
            rows=runs[mode][0]["rows"],
            seconds=seconds,
            rows_per_s=round(runs[mode][0]["rows"] / seconds),
            peak_rss_mb=round(peak),
            scorer=runs[mode][0]["scorer"],
        )
    speedup = figures["native"][0] / figures["factorized"][0]
    memory = figures["native"][1] / figures["factorized"][1]
    row("speed-up factorized vs materialized", times=speedup, peak_rss_ratio=memory)
    row("largest |proba difference|", value=f"{largest_difference(project):.1e}")
    project.close()


if __name__ == "__main__":
    main()
