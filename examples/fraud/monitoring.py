"""The fraud system's monitors, and the closed loop: drift -> ``drift_detected`` -> retraining.

- ``fraud_live`` watches the ``fraud`` deployment's inference log: the untransformed features
  of live transactions as served (the on-demand features computed from the request plus the
  card's windows and profile from the online store) and the predicted fraud probability, one window a day, against the training
  data of the model in production. Drift fires the pipeline event ``drift_detected``, which the
  ``retrain_fraud`` pipeline (``pipelines.py``) listens to.
- ``fraud_batch`` watches the batch predictions (``fraud_predictions``) week by week: the
  predictions' drift, the AUC estimated by CBPE before labels arrive, and the realized AUC once
  the transactions' fraud labels are logged with :func:`log_fraud_labels`.

``replay`` sends transactions of a period to a running server as live traffic (the demo uses it
to play the drifted days).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from examples.fraud.feature_pipeline import feature_groups
from examples.fraud.features import REQUEST_FIELDS
from examples.fraud.inference import DEPLOYMENT, PREDICTIONS, request_for
from examples.fraud.training_pipeline import MODEL

if TYPE_CHECKING:
    import fti
    from fti.monitoring.labels import LabelsResult
    from fti.monitoring.monitors import Monitor

LIVE_MONITOR = "fraud_live"
BATCH_MONITOR = "fraud_batch"
WEEK = timedelta(days=7)


def declare_monitors(project: fti.Project) -> tuple[Monitor, Monitor]:
    """Create (or get) the two monitors."""
    import fti

    monitoring = project.monitoring
    existing = {m.name: m for m in monitoring.list_monitors()}
    live = existing.get(LIVE_MONITOR) or monitoring.create_monitor(
        LIVE_MONITOR,
        deployment=DEPLOYMENT,
        window="1d",
        schedule="10 0 * * *",  # daily, for the day that just ended
        alert=fti.alert(event="drift_detected", cooldown="1d"),
        description="Live transactions as served against the production model's training data",
    )
    batch = existing.get(BATCH_MONITOR) or monitoring.create_monitor(
        BATCH_MONITOR,
        feature_group=PREDICTIONS,
        model=f"{MODEL}@production",
        window="7d",
        schedule="30 0 * * 1",  # weekly, Monday morning
        performance={"roc_auc": "< 0.85"},
        alert=fti.alert(event="fraud_performance_dropped", drift=None, cooldown="7d"),
        description="Weekly batch predictions: prediction drift, CBPE estimate, realized AUC once labelled",
    )
    return live, batch


def replay(url: str, project: fti.Project, start: datetime, end: datetime, n: int, seed: int = 0) -> int:
    """POST ``n`` transactions of ``[start, end)`` (sampled, 50 per request) to the deployment as
    live requests: the card number and the raw transaction. Returns rows sent."""
    import httpx

    from fti.serving.deployments import to_inputs

    transactions = feature_groups(project).transactions.read(
        columns=list(dict.fromkeys(["cc_num", "datetime", *REQUEST_FIELDS]))
    )
    period = transactions[(transactions["datetime"] >= start) & (transactions["datetime"] < end)]
    sample = period.sample(n=min(n, len(period)), random_state=seed)
    rows: list[dict[str, Any]] = [request_for(r) for r in sample.to_dict("records")]
    for i in range(0, len(rows), 50):
        chunk = rows[i : i + 50]
        response = httpx.post(
            f"{url}/v2/models/{DEPLOYMENT}/infer", json={"inputs": to_inputs(chunk)}, timeout=60
        )
        if response.status_code != 200:
            raise RuntimeError(f"{DEPLOYMENT}: HTTP {response.status_code}: {response.text}")
    return len(rows)


def log_fraud_labels(project: fti.Project, start: datetime, end: datetime) -> LabelsResult:
    """The fraud labels of the scored transactions of ``[start, end)`` (as the bank learns them
    from chargebacks), joined to the batch predictions by card number and transaction time."""
    transactions = feature_groups(project).transactions.read(columns=["cc_num", "datetime", "is_fraud"])
    scored = project.feature_store.get_feature_group(PREDICTIONS).read(columns=["cc_num", "datetime"])
    labels = scored.merge(transactions, on=["cc_num", "datetime"])
    labels = labels[(labels["datetime"] >= start) & (labels["datetime"] < end)]
    return project.monitoring.log_labels(PREDICTIONS, labels, model=f"{MODEL}@production")


def weekly_performance(project: fti.Project, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Run the batch monitor week by week over ``[start, end)``; per week the model version(s),
    the realized and the estimated AUC and whether the predictions drifted."""
    monitor = project.monitoring.get_monitor(BATCH_MONITOR)
    out = []
    for result in monitor.backfill(start, end):
        versions = sorted({p.model_version for p in result.performance if p.model_version})
        out.append(
            {
                "week": result.window_start,
                "rows": result.rows,
                "versions": versions,
                "auc": result.metric("roc_auc"),
                "auc_estimated": result.metric("roc_auc", "estimated"),
                "predictions_drifted": bool(result.drifted_predictions),
            }
        )
    return out
