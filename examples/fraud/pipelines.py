"""The credit-card fraud system's pipelines, declared for the fti scheduler.

================  =========  ================================  ==========================================
pipeline          kind       when                              what
================  =========  ================================  ==========================================
card_profiles     feature    daily at 02:00 UTC                upsert the card profiles
fraud_features    feature    hourly                            transaction + rolling-window features
train_fraud       training   after 50,000 new transactions     time split, gradient boosting, registry,
                                                               promotion gate (AUC >= 0.85), deployment
score_fraud       inference  daily                             batch-score yesterday's transactions
retrain_fraud     training   event ``drift_detected``          retrain (same gate) when a monitor finds
                                                               drift (see ``monitoring.py``)
================  =========  ================================  ==========================================

Register them with ``fti pipelines deploy examples/fraud/pipelines.py``; the README shows the
backfill and the runs. ``cards`` and ``seed`` choose the synthetic source (smaller for tests);
``drift_day`` turns on its drift switch from that many days after 2026-01-01.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# `fti pipelines` imports this file by path: make the repository root importable for `examples.*`
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import fti  # noqa: E402
from examples.fraud import feature_pipeline, inference, training_pipeline  # noqa: E402
from examples.fraud.generator import DATA_START  # noqa: E402


@fti.feature_pipeline(schedule="0 2 * * *", retries=2, retry_backoff=60, timeout="10m")
def card_profiles(
    project: fti.Project, start: datetime, end: datetime, cards: int = 1000, seed: int = 7
) -> None:
    """Upsert the card profiles (static attributes) from the card system."""
    rows = feature_pipeline.ingest_profiles(project, cards, seed)
    print(f"card_profiles: {rows} cards")


@fti.feature_pipeline(schedule="0 * * * *", retries=3, retry_backoff=30, timeout="15m", concurrency="forbid")
def fraud_features(
    project: fti.Project, start: datetime, end: datetime, cards: int = 1000, seed: int = 7, drift_day: int = 0
) -> None:
    """Compute the transaction and rolling-window features of the transactions in [start, end)."""
    drift_from = DATA_START + timedelta(days=drift_day) if drift_day > 0 else None
    rows = feature_pipeline.ingest_transactions(project, start, end, cards, seed, drift_from)
    print(f"fraud_features: {rows} transactions in [{start.isoformat()}, {end.isoformat()})")


@fti.training_pipeline(
    trigger=fti.on_new_data(feature_pipeline.TRANSACTIONS, min_rows=50_000), retries=1, timeout="1h"
)
def train_fraud(project: fti.Project, max_iter: int = 200, learning_rate: float = 0.1) -> None:
    """Train the fraud model on a time-based split; register, gate on AUC, promote and deploy it."""
    metrics = training_pipeline.train(project, max_iter=max_iter, learning_rate=learning_rate)
    print(f"train_fraud: {metrics}")


@fti.inference_pipeline(schedule=fti.every(days=1), retries=2, timeout="1h")
def score_fraud(project: fti.Project, start: datetime, end: datetime) -> None:
    """Score the transactions of the day that just ended into the fraud_predictions group."""
    rows = inference.score(project, start, end)
    print(f"score_fraud: {rows} transactions scored in [{start.isoformat()}, {end.isoformat()})")


@fti.training_pipeline(trigger=fti.on_event("drift_detected"), retries=1, timeout="1h")
def retrain_fraud(project: fti.Project, event: dict[str, Any] | None = None) -> None:
    """Retrain on all data when a monitor fires ``drift_detected``; the same gate decides the promotion."""
    payload = (event or {}).get("payload") or {}
    drifted = [b["column"] for b in payload.get("breaches", [])]
    print(f"retrain_fraud: monitor {payload.get('monitor')!r} found drift in {drifted}")
    metrics = training_pipeline.train(project)
    version = project.model_registry.get_model(f"{training_pipeline.MODEL}@production")
    print(f"retrain_fraud: {training_pipeline.MODEL} version {version.version} in production, {metrics}")
