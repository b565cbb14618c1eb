"""Server-side render time of every web UI page with 1,000 feature groups, 1,000 model versions and
10,000 runs in the catalog (issue 15: p95 <= 50 ms per page on the 2-core machine).

Each page is requested through the in-process ASGI client (no network); the time is the app's own
``Server-Timing`` (from the first byte of the request to the response headers: session, catalog
reads, rendering). Reference in the same run: the monitoring page, which renders the page shell
and reads no catalog table, so ``p95 - reference`` is what the page's own work costs.

Seeding goes through the public API (feature groups, model versions with feature-view lineage,
a deployment), except the 10,000 runs: they are inserted with ``fti.training.records`` and one
captured environment, because ``project.run()`` captures git state and the package list each
time (~60 ms, 10 minutes for 10,000); each run has two params and three metric points.

Run: .venv/bin/python -m benchmarks.ui [--groups 1000 --versions 1000 --runs 10000 --requests 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import fti
from benchmarks._report import percentile, row

TARGET_P95_MS = 50.0


def seed(project: fti.Project, groups: int, versions: int, runs: int) -> dict[str, int]:
    """Fill the catalog; returns ids the page list needs."""
    from sklearn.linear_model import LogisticRegression

    from fti.training import records
    from fti.training.runs import git_state, installed_packages

    fs = project.feature_store
    started = time.perf_counter()
    features = [fti.Feature("id", "int64"), fti.Feature("ts", "timestamp"), fti.Feature("x", "float64")]
    rng = np.random.default_rng(0)
    for i in range(groups):
        fg = fs.get_or_create_feature_group(
            f"g{i:04d}", primary_key=["id"], event_time="ts", features=features,
            description=f"group {i} of the UI benchmark ({'even' if i % 2 == 0 else 'odd'})",
        )  # fmt: skip
        if i % 100 == 0:  # some groups with data: commits, statistics, rows
            fg.add_tag("with-data")
            fg.insert(pd.DataFrame({
                "id": np.arange(5000), "ts": pd.Timestamp("2026-01-01", tz="UTC"), "x": rng.normal(size=5000),
            }))  # fmt: skip
    print(f"seeded {groups} feature groups in {time.perf_counter() - started:.0f}s", flush=True)

    started = time.perf_counter()
    spine = fs.get_feature_group("g0000")
    labels = spine.read_page(limit=1000).items
    fv = fs.get_or_create_feature_view("bench", query=spine.select(["x"]))
    fv.create_training_data()
    X = pd.DataFrame({"x": [r["x"] for r in labels]})
    y = (X["x"] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    mr = project.model_registry
    for v in range(versions):
        mr.register(
            "bench", model, feature_view=fv, training_dataset_version=1,
            metrics={"auc": float(rng.uniform(0.5, 1.0)), "f1": float(rng.uniform(0.3, 0.9))},
            description=f"version {v + 1}",
        )  # fmt: skip
    mr.set_alias("bench", versions // 2, "production")
    project.serving.deploy("bench", model="bench@production", scorer="native")
    print(f"seeded {versions} model versions in {time.perf_counter() - started:.0f}s", flush=True)

    started = time.perf_counter()
    commit, dirty = git_state()
    start = records.RunStart(
        name="", description="", git_commit=commit, git_dirty=dirty,
        python_version=sys.version.split()[0], packages=installed_packages(), created_by="bench",
    )  # fmt: skip
    catalog = project.backends.catalog
    last = 0
    for i in range(runs):
        run_start = records.RunStart(**{**start.__dict__, "name": f"train-{i % 20}"})
        last = records.create_run(catalog, project.id, run_start, {"lr": 0.1, "depth": i % 7})
        for step in range(3):
            records.append_metrics(catalog, last, {"loss": 1.0 / (step + 1)}, step, datetime.now(UTC))
        records.end_run(catalog, last, "finished", None)
    print(f"seeded {runs} runs in {time.perf_counter() - started:.0f}s", flush=True)
    return {"run": last, "version": versions // 2}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--home", type=Path, default=None, help="reuse a seeded home")
    args = parser.parse_args()

    from fti.testing.asgi import AsgiClient
    from fti.ui.app import create_app

    home = args.home or Path(tempfile.mkdtemp(prefix="fti-bench-ui-"))
    fresh = not (home / "catalog.db").exists()
    project = fti.connect(home=home)
    ids = (
        seed(project, args.groups, args.versions, args.runs)
        if fresh
        else {"run": 1, "version": args.versions // 2}
    )
    v = ids["version"]
    pages = [
        ("reference: monitoring (shell only)", "/monitoring"),
        ("home", "/"),
        ("search", "/search?q=g01"),
        ("feature groups", "/feature-groups"),
        ("feature groups, page 11", "/feature-groups?offset=500"),
        ("feature groups, tag filter", "/feature-groups?tag=with-data"),
        ("feature group (stats, rows)", "/feature-groups/g0000/1"),
        ("feature views", "/feature-views"),
        ("feature view", "/feature-views/bench/1"),
        ("lineage of a feature view", "/lineage/fv/bench/1"),
        ("lineage of a model version", f"/lineage/model/bench/{v}"),
        ("models", "/models"),
        ("model: 1,000 versions", "/models/bench"),
        ("model: by metric", "/models/bench?order=metrics.auc%20desc"),
        ("model version", f"/models/bench/{v}"),
        ("compare 3 versions", "/models/bench/compare?v=1&v=2&v=3"),
        ("runs", "/runs"),
        ("runs, page 101", "/runs?offset=5000"),
        ("runs, filtered", "/runs?q=train-7"),
        ("run", f"/runs/{ids['run']}"),
        ("deployments", "/deployments"),
        ("deployment (try-it form)", "/deployments/bench"),
        ("pipelines", "/pipelines"),
    ]
    print(f"\nserver-side render time per page, {args.requests} requests each (ms; loaded shared machine)")
    reference = None
    worst = 0.0
    with AsgiClient(create_app(project)) as client:
        for label, path in pages:
            for _ in range(3):  # warm caches and imports
                assert client.get(path).status_code == 200, path
            times = []
            for _ in range(args.requests):
                response = client.get(path)
                times.append(float(response.headers["server-timing"].split("dur=")[1]))
            p50, p95 = percentile(times, 50), percentile(times, 95)
            if reference is None:
                reference = p95
            else:
                worst = max(worst, p95)
            row(
                label,
                p50_ms=p50,
                p95_ms=p95,
                over_reference_ms=p95 - reference,
                target=f"<= {TARGET_P95_MS:g}",
            )
    print(f"\nworst page p95: {worst:.1f} ms (target {TARGET_P95_MS:g} ms); reference p95 {reference:.1f} ms")
    project.close()


if __name__ == "__main__":
    main()
