"""Point-in-time training data against what a user would write by hand: DuckDB on the Parquet files.

Data: a spine of ``--rows`` rows (1M by default; several sizes may be given) and two joined groups
of 1M rows each over 100,000 keys with 10 float features each (20 features).

Reference: the Parquet files of the Delta versions the feature view pins (the snapshot's file list,
what ``deltalake.DeltaTable(path, version=v).file_uris()`` gives) read by DuckDB's
``read_parquet`` in a plain two-way ``ASOF LEFT JOIN``, to Arrow (the join alone) and to pandas
(what the user-facing calls return). Measured for fti:

- the join alone: ``pit.run`` as training data runs it (rows ordered by spine event time and key,
  so the dataset is deterministic), against the reference join to Arrow;
- ``fv.create_training_data()``: the join, the split, fitting, writing and recording the training
  dataset, and the rows as pandas;
- ``fv.get_training_data(v)``: re-reading a stored version (also against DuckDB reading that
  version's Parquet files to pandas);
- ``fv.get_batch_data()``: the join of the latest data, transformed, as pandas.

Targets (issue 21): ``create_training_data`` <= 1.5x and ``get_batch_data`` <= 1.2x the reference
to pandas, peak RSS <= 1.2x the reference's. Every measured call runs in its own child process
(after the same setup: opening the project and pinning the snapshot), so each peak RSS is that
call's; runs are interleaved so background load hits every variant alike. Wall and CPU seconds
(user + system of all threads) are medians; CPU time is less disturbed by a loaded machine. When
Feast is available (see :mod:`benchmarks._feast`) its ``get_historical_features(...).to_df()``
over the same files is timed too.

Run: .venv/bin/python -m benchmarks.pit_join [--rows 1000000 5000000] [--repeat 3]
     [--feast-python VENV/bin/python]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import fti
from benchmarks import _feast
from benchmarks._report import median, peak_rss_mb, row, run_child

DATA = Path(__file__).parent / ".data" / "pit_join"
KEYS = 100_000
GROUP_ROWS = 1_000_000
YEAR_S = 365 * 24 * 3600
VIEW = "pit_bench"
CASES = (
    "reference join",
    "fti join (pit.run, ordered)",
    "reference -> pandas",
    "fti create_training_data",
    "fti get_batch_data",
    "reference read dataset -> pandas",
    "fti get_training_data",
)
FEAST = "feast get_historical_features"
FEAST_FILES = "feast_files.json"
"""The pinned file lists, written for Feast's child (its interpreter has no fti dependencies)."""


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


def home(rows: int) -> Path:
    return DATA / f"spine-{rows}"


def build(rows: int) -> None:
    """The groups, the feature view and one stored training dataset (made once per size)."""
    import shutil

    path = home(rows)
    if (path / "ready").exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    project = fti.connect(home=path)
    fs = project.feature_store
    rng = np.random.default_rng(0)
    tx = fs.get_or_create_feature_group("tx", primary_key=["tid"], event_time="ts")
    tx.insert(frame(rng, rows, "", label=True))
    for name in ("a", "b"):
        fs.get_or_create_feature_group(name, primary_key=["cc_num"], event_time="ts").insert(
            frame(rng, GROUP_ROWS, f"{name}_")
        )
    fv = fs.get_or_create_feature_view(VIEW, query=query(fs), labels=["is_fraud"])
    fv.create_training_data(description="re-read by the benchmark")
    project.close()
    (path / "ready").touch()


def query(fs: Any) -> Any:
    tx, a, b = (fs.get_feature_group(n) for n in ("tx", "a", "b"))
    return (
        tx.select(["cc_num", "amount", "is_fraud"])
        .join(a.select_all(include_primary_key=False, include_event_time=False), on=["cc_num"])
        .join(b.select_all(include_primary_key=False, include_event_time=False), on=["cc_num"])
    )


def reference_sql(files: list[list[str]]) -> str:
    """The hand-written join over the pinned Parquet files of the spine and the two groups."""

    def parquet(paths: list[str]) -> str:
        return "read_parquet([" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "])"

    a_cols = ", ".join(f"a.a_{i}" for i in range(10))
    b_cols = ", ".join(f"b.b_{i}" for i in range(10))
    return (
        f"SELECT s.tid, s.ts, s.cc_num, s.amount, s.is_fraud, {a_cols}, {b_cols} "
        f"FROM {parquet(files[0])} s "
        f"ASOF LEFT JOIN {parquet(files[1])} a ON s.cc_num = a.cc_num AND s.ts >= a.ts "
        f"ASOF LEFT JOIN {parquet(files[2])} b ON s.cc_num = b.cc_num AND s.ts >= b.ts"
    )


def pinned_files(project: fti.Project) -> tuple[Any, list[list[str]]]:
    """The view's snapshot and the user's file list: the Parquet files of the Delta versions the
    feature view pins (spine, group a, group b), as delta-rs lists them."""
    from deltalake import DeltaTable

    from fti.features import training_data

    offline = project.backends.offline
    snapshot, versions = training_data.snapshot(project.feature_store.get_feature_view(VIEW).query, offline)
    files = [
        DeltaTable(f"{offline.url}/{table}", version=version).file_uris()
        for table, version in versions.items()
    ]
    return snapshot, files


def timed_call(call: Callable[[], Any]) -> dict[str, Any]:
    """One call's wall and CPU seconds (all threads), result rows and this process's peak RSS."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = call()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "rows": len(result),
        "peak_mib": peak_rss_mb(),  # VmHWM: ru_maxrss would include the parent's peak
    }


def measure(case: str, rows: int) -> dict[str, Any]:
    """Run ``case`` once in this (child) process: its wall and CPU seconds, result rows, peak RSS."""
    if case == FEAST:  # in Feast's interpreter, which has no fti dependencies: the files only
        cleanup: list[Callable[[], Any]] = []
        out = timed_call(feast_training_data(json.loads((home(rows) / FEAST_FILES).read_text()), cleanup))
        for step in cleanup:
            step()
        return out
    import duckdb
    from deltalake import DeltaTable

    from fti.features import pit

    project = fti.connect(home=home(rows))
    fs = project.feature_store
    fv = fs.get_feature_view(VIEW)
    offline = project.backends.offline
    snapshot, files = pinned_files(project)
    stored = fv.training_dataset(fv.training_dataset_versions()[0])
    stored_files = DeltaTable(f"{offline.url}/{stored.table_name}", version=stored.table_version).file_uris()

    def reference(to_pandas: bool) -> Any:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        relation = con.sql(reference_sql(files))
        result = relation.df() if to_pandas else relation.to_arrow_table()
        con.close()
        return result

    def read_stored() -> Any:
        con = duckdb.connect()
        result = con.sql(f"SELECT * FROM read_parquet({stored_files!r})").df()
        con.close()
        return result

    created: list[int] = []

    def create() -> Any:
        version, df = fv.create_training_data()
        created.append(version)
        return df

    calls: dict[str, Callable[[], Callable[[], Any]]] = {  # each prepares its call, untimed
        "reference join": lambda: lambda: reference(False),
        "fti join (pit.run, ordered)": lambda: lambda: pit.run(fv.query, snapshot),
        "reference -> pandas": lambda: lambda: reference(True),
        "fti create_training_data": lambda: create,
        "fti get_batch_data": lambda: fv.get_batch_data,
        "reference read dataset -> pandas": lambda: read_stored,
        "fti get_training_data": lambda: lambda: fv.get_training_data(stored.version)[0],
    }
    out = timed_call(calls[case]())
    for version in created:  # not timed: keep the disk from filling up run after run
        fv.delete_training_dataset(version)
    project.close()
    return out


def feast_training_data(files: list[list[str]], cleanup: list[Callable[[], Any]]) -> Callable[[], Any]:
    """Feast's point-in-time join of the same rows, ready to call: two feature views over the
    groups' rows, the spine as the entity frame (only run when Feast is installed; the repository
    and the entity frame are prepared untimed)."""
    import tempfile
    from datetime import timedelta

    import pyarrow.parquet as pq
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.types import Float64

    repo = tempfile.TemporaryDirectory()
    cleanup.append(repo.cleanup)
    entity_df = pq.read_table(files[0], columns=["tid", "ts", "cc_num", "amount", "is_fraud"]).to_pandas()
    entity_df = entity_df.rename(columns={"ts": "event_timestamp"})
    card = Entity(name="card", join_keys=["cc_num"])
    views = []
    for name, paths in (("a", files[1]), ("b", files[2])):
        merged = f"{repo.name}/{name}.parquet"  # a FileSource reads one path
        pq.write_table(pq.read_table(paths), merged)
        views.append(
            FeatureView(
                name=f"group_{name}",
                entities=[card],
                ttl=timedelta(days=3650),
                schema=[Field(name=f"{name}_{i}", dtype=Float64) for i in range(10)],
                source=FileSource(path=merged, timestamp_field="ts"),
            )
        )
    config = RepoConfig(
        project="pit_bench",
        registry=f"{repo.name}/registry.db",
        provider="local",
        offline_store={"type": "file"},
        online_store={"type": "sqlite", "path": f"{repo.name}/online.db"},
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    store.apply([card, *views])
    features = [f"group_{n}:{n}_{i}" for n in ("a", "b") for i in range(10)]
    return lambda: store.get_historical_features(entity_df=entity_df, features=features).to_df()


def run(rows: int, repeat: int, feast_python: str | None) -> None:
    build(rows)
    cases = [*CASES, *([FEAST] if feast_python else [])]
    if feast_python:
        with fti.connect(home=home(rows)) as project:
            (home(rows) / FEAST_FILES).write_text(json.dumps(pinned_files(project)[1]))
    results: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    for _ in range(repeat):  # interleaved, so background load hits every variant alike
        for case in cases:
            python = feast_python if case == FEAST and feast_python else sys.executable
            args = ("--child", case, "--rows", str(rows))
            results[case].append(run_child("benchmarks.pit_join", *args, python=python))
    print(
        f"\npoint-in-time training data: spine {rows:,} rows, 2 groups x {GROUP_ROWS:,} rows, "
        f"{KEYS:,} keys, 20 features ({repeat} runs each in a child process; median seconds)"
    )
    if FEAST not in cases:
        print("(Feast is not available: pass --feast-python to measure it; see benchmarks/_feast.py)")
    figures = {
        case: {key: median([r[key] for r in runs]) for key in ("wall", "cpu", "peak_mib")}
        for case, runs in results.items()
    }
    for case, runs in results.items():
        assert len({r["rows"] for r in runs}) == 1
        row(
            case,
            wall_s=figures[case]["wall"],
            cpu_s=figures[case]["cpu"],
            peak_rss_mib=figures[case]["peak_mib"],
            rows=f"{runs[0]['rows']:,}",
        )
    comparisons = [
        ("fti join (pit.run, ordered)", "reference join", None),
        ("fti create_training_data", "reference -> pandas", 1.5),
        ("fti get_batch_data", "reference -> pandas", 1.2),
        ("fti get_training_data", "reference -> pandas", None),
        ("fti get_training_data", "reference read dataset -> pandas", None),
        *([(FEAST, "reference -> pandas", None)] if FEAST in cases else []),
    ]
    for measured, reference, target in comparisons:
        ratio = {k: figures[measured][k] / figures[reference][k] for k in ("wall", "cpu", "peak_mib")}
        row(
            f"ratio {measured.split(' (')[0]} / {reference}",
            wall=ratio["wall"],
            cpu=ratio["cpu"],
            peak_rss=ratio["peak_mib"],
            target="-" if target is None else f"<= {target}x time, <= 1.2x RSS",
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--feast-python", help="a Python with Feast installed (see benchmarks._feast)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.rows[0])))
        return
    for rows in args.rows:
        run(rows, args.repeat, _feast.interpreter(args.feast_python))


if __name__ == "__main__":
    main()
