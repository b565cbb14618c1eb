"""The cost of on-demand features per request in the model server (issue 18).

Data: the fraud example's generator and feature pipeline (``--cards`` cards x ``--days`` days).
Two enriched deployments over the same online rows, with the same width of model input and a
logistic regression each, differ only in where the five request-time features come from:

- **on-demand**: the ``fraud`` feature view with its ``@fti.on_demand`` functions; a request sends
  ``cc_num`` and the raw transaction (amount, category, datetime as ISO text, lat, lon), and the
  server converts them and runs ``amount_bin``, ``category_code`` and ``movement``;
- **reference (passed)**: a view over a group that stores those five features precomputed; a
  request sends ``cc_num`` and the five values (what the example's clients did before).

Both look up the same window and profile rows. Measured in the same run: the dataplane step of
one request in process (validation, online lookups, on-demand functions, transformations) and
one single-row request over HTTP to a real server on loopback (uvicorn, 1 client), p50 and p99
over ``--requests`` requests each, interleaved in rounds so load changes hit both alike.

Run: .venv/bin/python -m benchmarks.serving.on_demand [--cards 300 --days 14 --requests 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

import fti
from benchmarks._report import percentile, row
from examples.fraud import feature_pipeline, inference, training_pipeline
from examples.fraud.generator import DATA_START, generate_profiles, generate_transactions
from fti.features import training_data
from fti.serving.app import create_app
from fti.serving.deployments import to_inputs
from fti.serving.protocol import parse_infer_request
from fti.testing.serving import running_server

DERIVED = training_pipeline.ON_DEMAND_FEATURES


def build(project: fti.Project, cards: int, days: int) -> None:
    """The fraud feature groups, its view, a reference view with the derived features stored,
    and a deployment of each."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    end = DATA_START + timedelta(days=days)
    feature_pipeline.ingest_profiles(project, cards)
    feature_pipeline.ingest_transactions(project, DATA_START, end, cards)
    fv = training_pipeline.feature_view(project)
    fv.create_training_data()
    stored = training_data.read(fv, fv.training_dataset(1)).to_pandas()
    fs = project.feature_store
    derived = fs.get_or_create_feature_group(
        "tx_derived", primary_key=["cc_num"], event_time="datetime", online_enabled=True
    )
    derived.insert(stored[["cc_num", "datetime", "amount", *DERIVED, "is_fraud"]])
    groups = feature_pipeline.feature_groups(project)
    windows = [c for c in fv.feature_names(False) if c.startswith(("tx_count", "amount_sum", "amount_mean"))]
    reference = fs.get_or_create_feature_view(
        "fraud_passed",
        query=derived.select(["amount", *DERIVED, "is_fraud"])
        .join(groups.windows.select(windows), on=["cc_num"])
        .join(groups.profiles.select(training_pipeline.PROFILE_FEATURES), on=["cc_num"]),
        labels=["is_fraud"],
        transformations=training_pipeline.TRANSFORMATIONS,
    )
    reference.create_training_data()
    for name, view in (("od", fv), ("passed", reference)):
        x, y = view.get_training_data(1)
        model = make_pipeline(
            SimpleImputer(strategy="constant", fill_value=0.0),
            StandardScaler(),
            LogisticRegression(max_iter=2000),
        )
        model.fit(x, y)
        project.model_registry.register(
            name, model, feature_view=view, training_dataset_version=1, input_example=x.head(3)
        )
        project.serving.deploy(name, model=name, enrich=True, allow_missing=True)
    assert len(fv.feature_names()) == len(reference.feature_names())


def requests_for(project: fti.Project, cards: int, days: int, n: int) -> tuple[list[Any], list[Any]]:
    """``n`` live transactions as requests to each deployment (raw, and with the derived values)."""
    end = DATA_START + timedelta(days=days)
    upcoming = generate_transactions(generate_profiles(cards), end, end + timedelta(days=2))
    raw = [inference.request_for(t) for t in upcoming.head(n).to_dict("records")]
    serving = project.feature_store.get_feature_view("fraud").serving(1)
    vectors = serving.get_feature_vectors(
        [{"cc_num": r["cc_num"]} for r in raw],
        passed_features=[{k: v for k, v in r.items() if k != "cc_num"} for r in raw],
        allow_missing=True,
        return_type="pandas",
    )
    assert not set(DERIVED) & set(training_pipeline.TRANSFORMATIONS)  # the vector holds them as computed
    passed = [
        {"cc_num": r["cc_num"], "amount": r["amount"], **{d: float(vectors[d].iloc[i]) for d in DERIVED}}
        for i, r in enumerate(raw)
    ]
    return raw, passed


def body(request: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": to_inputs(request)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=300)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    project = fti.connect(home=Path(tempfile.mkdtemp(prefix="fti-bench-on-demand-")) / "home")
    started = time.perf_counter()
    build(project, args.cards, args.days)
    print(f"setup {time.perf_counter() - started:.1f} s ({args.cards} cards x {args.days} days)", flush=True)
    raw, passed = requests_for(project, args.cards, args.days, 200)
    cases = {"on-demand": ("od", raw), "reference (passed)": ("passed", passed)}

    from fti.serving.repository import load_model

    loaded = {
        label: load_model(project, project.serving.get(name).spec) for label, (name, _) in cases.items()
    }
    parsed = {label: [parse_infer_request(body(r)) for r in reqs] for label, (_, reqs) in cases.items()}
    prepare: dict[str, list[float]] = {label: [] for label in cases}
    for i in range(args.requests):  # interleaved: load changes hit both alike
        for label in cases:
            request = parsed[label][i % len(parsed[label])]
            start = time.perf_counter()
            loaded[label].prepare(request)
            prepare[label].append(time.perf_counter() - start)

    http: dict[str, list[float]] = {label: [] for label in cases}
    with (
        running_server(create_app(project, poll_interval_s=1.0)) as url,
        httpx.Client(base_url=url) as client,
    ):
        bodies = {label: [body(r) for r in reqs] for label, (_, reqs) in cases.items()}
        for label, (name, _) in cases.items():  # warm up, and check both answer
            response = client.post(f"/v2/models/{name}/infer", json=bodies[label][0])
            assert response.status_code == 200, response.text
        for i in range(args.requests):
            for label, (name, _) in cases.items():
                start = time.perf_counter()
                response = client.post(f"/v2/models/{name}/infer", json=bodies[label][i % len(bodies[label])])
                http[label].append(time.perf_counter() - start)
                assert response.status_code == 200, response.text

    print(f"\none single-row request, {args.requests} each, ms (p50 / p99)")
    for what, figures in (("dataplane (in process)", prepare), ("HTTP request (loopback)", http)):
        for label, values in figures.items():
            row(f"{what}: {label}", p50=percentile(values, 50) * 1e3, p99=percentile(values, 99) * 1e3)
        od, ref = figures["on-demand"], figures["reference (passed)"]
        row(
            f"{what}: on-demand overhead",
            p50=(percentile(od, 50) - percentile(ref, 50)) * 1e3,
            ratio=percentile(od, 50) / percentile(ref, 50),
        )
    project.close()


if __name__ == "__main__":
    main()
