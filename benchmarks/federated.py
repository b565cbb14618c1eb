"""Federated training on the fraud data against centralized training of the same model, same run.

Data: the fraud example (``--cards`` cards over ``--days`` days; 1,000 x 90 is ~186,000
transactions), partitioned by the card's home region: 10 clients, each its own process reading
only its region. Federated: ``--rounds`` rounds of FedAvg with the example's ``SGDClassifierSpec``
(one local epoch per round). Reference, in the same run on the same training dataset:

- centralized SGD: the same spec, ``--rounds`` epochs over the pooled training rows (the same
  number of passes over the data), after reading and transforming them with ``get_training_data``;
- centralized logistic regression (lbfgs), for the AUC a federation gives up.

Printed (medians over ``--repeat`` federated runs): total wall time of ``fti.training.federated``
(client start-up, setup, rounds), the setup phase, rounds per second, seconds per round, bytes
per round (exact protobuf sizes of every Flower message, both directions) and the pooled test
AUC; their ratios to the centralized run.

Run: .venv/bin/python -m benchmarks.federated [--cards 1000] [--days 90] [--rounds 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

import fti
from benchmarks._report import median, row
from examples.fraud import federated as example
from examples.fraud import training_pipeline

DATA = Path(__file__).parent / ".data" / "federated"


def build(cards: int, days: int) -> fti.Project:
    home = DATA / f"{cards}x{days}"
    marker = home / "ready"
    if not marker.exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
    project = fti.connect(home=home)
    if not marker.exists():
        example.prepare(project, cards, days)
        marker.touch()
    return project


def centralized(fv: Any, version: int, rounds: int, spec: Any) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    start = time.perf_counter()
    X_train, X_test, y_train, y_test = fv.get_training_data(version)
    x, y = X_train.to_numpy(np.float64), y_train.to_numpy()
    read = time.perf_counter() - start
    model = spec.build(x.shape[1])
    start = time.perf_counter()
    for epoch in range(rounds):
        model.fit(x, y, proximal_mu=0.0, seed=epoch)
    sgd = time.perf_counter() - start
    sgd_auc = float(roc_auc_score(y_test, model.predict_proba(X_test.to_numpy(np.float64))))
    start = time.perf_counter()
    reference = LogisticRegression(max_iter=2000).fit(X_train.fillna(0.0), y_train)
    lbfgs = time.perf_counter() - start
    lbfgs_auc = float(roc_auc_score(y_test, reference.predict_proba(X_test.fillna(0.0))[:, 1]))
    return {"read": read, "sgd": sgd, "sgd_auc": sgd_auc, "lbfgs": lbfgs, "lbfgs_auc": lbfgs_auc}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project = build(args.cards, args.days)
    fv = example.feature_view(project)
    fv.train_test_split(split="time", test_start=training_pipeline.split_time(project))
    version = fv.last_training_dataset_version
    assert version is not None
    spec = fti.training.SGDClassifierSpec(learning_rate=0.05, alpha=1e-5)

    runs: list[dict[str, float]] = []
    references: list[dict[str, float]] = []
    for _ in range(args.repeat):  # interleaved, so background load hits both alike
        start = time.perf_counter()
        result = fti.training.federated(
            fv, example.PARTITION, model=spec, rounds=args.rounds, training_dataset_version=version
        )
        total = time.perf_counter() - start
        in_rounds = sum(r.seconds for r in result.rounds)
        runs.append(
            {
                "total": total,
                "setup": total - in_rounds,
                "rounds_per_s": len(result.rounds) / in_rounds,
                "round_s": median([r.seconds for r in result.rounds]),
                "bytes": result.bytes_per_round,
                "bytes_sent": median([float(r.bytes_sent) for r in result.rounds]),
                "bytes_received": median([float(r.bytes_received) for r in result.rounds]),
                "setup_bytes": float(result.setup_bytes),
                "auc": result.metrics["auc"],
            }
        )
        references.append(centralized(fv, version, args.rounds, spec))
    rows = sum(p["rows"]["train"] for p in result.partitions.values())
    print(
        f"federated training: {len(result.partitions)} clients (regions, {rows:,} training rows, "
        f"{min(p['rows']['train'] for p in result.partitions.values()):,} to "
        f"{max(p['rows']['train'] for p in result.partitions.values()):,} per client), {args.rounds} rounds, "
        f"{len(result.feature_names)} features; medians of {args.repeat} runs"
    )
    fed = {key: median([r[key] for r in runs]) for key in runs[0]}
    ref = {key: median([r[key] for r in references]) for key in references[0]}
    row("federated: total wall time", s=fed["total"], runs=" ".join(f"{r['total']:.1f}" for r in runs))
    row("federated: start-up + setup (before round 1)", s=fed["setup"])
    row("federated: rounds", per_s=fed["rounds_per_s"], median_round_s=fed["round_s"])
    row(
        "federated: bytes per round (both ways)",
        bytes=fed["bytes"],
        sent=fed["bytes_sent"],
        received=fed["bytes_received"],
    )
    row("federated: setup bytes (plan, statistics)", bytes=fed["setup_bytes"])
    row("centralized: read + transform training data", s=ref["read"])
    row(f"centralized: SGD, {args.rounds} epochs", s=ref["sgd"])
    row("centralized: logistic regression (lbfgs)", s=ref["lbfgs"])
    central = ref["read"] + ref["sgd"]
    row("ratio federated total / centralized read+SGD", x=fed["total"] / central)
    row("ratio federated rounds / centralized SGD epochs", x=(fed["total"] - fed["setup"]) / ref["sgd"])
    row("test AUC", federated=fed["auc"], centralized_sgd=ref["sgd_auc"], centralized_lbfgs=ref["lbfgs_auc"])
    project.close()


if __name__ == "__main__":
    main()
