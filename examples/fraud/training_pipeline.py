"""The fraud example's training pipeline: feature view, time-based split, gradient boosting, registry.

The ``fraud`` feature view joins, for every transaction (the spine, holding the ``is_fraud``
label), the card's rolling-window aggregates as of that transaction and the card's profile,
point-in-time correctly. Model-dependent transformations (one-hot categories, log amounts, a
scaled credit limit) are fitted on the training split only. The test split is the last quarter
of the period: the model is judged on transactions that happened after everything it saw.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from examples.fraud.feature_pipeline import feature_groups

if TYPE_CHECKING:
    import fti

FEATURE_VIEW = "fraud"
MODEL = "fraud"
AUC_FLOOR = 0.85
TRANSACTION_FEATURES = [
    "amount",
    "amount_bin",
    "category_code",
    "seconds_since_prev",
    "km_from_prev",
    "km_from_home",
]
PROFILE_FEATURES = ["provider", "credit_limit", "birth_year"]
LABEL = "is_fraud"
TRANSFORMATIONS = {
    "provider": "one_hot_encoder",
    "amount": "log1p",
    "amount_sum_7d": "log1p",
    "credit_limit": "standard_scaler",
}


def feature_view(project: fti.Project) -> Any:
    """The ``fraud`` feature view (created on first use)."""
    groups = feature_groups(project)
    query = (
        groups.transactions.select([*TRANSACTION_FEATURES, LABEL])
        .join(groups.windows.select_all(include_primary_key=False, include_event_time=False), on=["cc_num"])
        .join(groups.profiles.select(PROFILE_FEATURES), on=["cc_num"])
    )
    return project.feature_store.get_or_create_feature_view(
        FEATURE_VIEW,
        version=1,
        query=query,
        labels=[LABEL],
        transformations=TRANSFORMATIONS,
        description="Card transactions with rolling aggregates and profile, labelled with is_fraud",
    )


def split_time(project: fti.Project, test_fraction: float = 0.25) -> datetime:
    """The start of the test period: the last ``test_fraction`` of the data, at a day boundary."""
    import pandas as pd

    transactions = feature_groups(project).transactions
    if transactions.latest_commit_version() is None:
        from fti.errors import ValidationError

        raise ValidationError(
            "the transactions feature group is empty: run the fraud_features pipeline first"
        )
    times = transactions.read(columns=["datetime"])["datetime"]
    first, last = times.min(), times.max()
    cut = (first + (last - first) * (1.0 - test_fraction)).floor("D")
    return pd.Timestamp(max(cut, first.ceil("D"))).to_pydatetime()


def train(
    project: fti.Project, max_iter: int = 200, learning_rate: float = 0.1, max_leaf_nodes: int = 31
) -> dict[str, float]:
    """Fit a gradient-boosted classifier on a time-based split, register it with its test metrics,
    promote it to ``fraud@production`` when AUC >= 0.85, and (re)deploy ``fraud``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, roc_auc_score
    from threadpoolctl import threadpool_limits

    fv = feature_view(project)
    start_of_test = split_time(project)
    X_train, X_test, y_train, y_test = fv.train_test_split(
        split="time", test_start=start_of_test, description=f"time split, test from {start_of_test:%Y-%m-%d}"
    )
    params = {
        "model": "HistGradientBoostingClassifier",
        "max_iter": max_iter,
        "learning_rate": learning_rate,
        "max_leaf_nodes": max_leaf_nodes,
        "test_start": start_of_test.isoformat(),
    }
    with project.run("fraud-training", params=params) as run:
        model = HistGradientBoostingClassifier(
            max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes, random_state=0
        )
        # one OpenMP thread: on a small, busy machine idle-spinning threads slow fits down many times
        with threadpool_limits(limits=1, user_api="openmp"):
            model.fit(X_train, y_train)
        scores = model.predict_proba(X_test)[:, 1]
        metrics = {
            "auc": float(roc_auc_score(y_test, scores)),
            "average_precision": float(average_precision_score(y_test, scores)),
            "train_rows": float(len(X_train)),
            "test_rows": float(len(X_test)),
            "test_fraud_rate": float(y_test.mean()),
        }
        run.log_metrics(metrics)
        # online vectors use the transformations fitted on this training dataset
        fv.init_serving(training_dataset_version=fv.last_training_dataset_version)
        mr = project.model_registry
        version = mr.register(
            MODEL,
            model,
            run=run,
            feature_view=fv,
            training_dataset_version=fv.last_training_dataset_version,
            metrics=metrics,
            input_example=X_train.head(5),
            description="HistGradientBoosting fraud classifier, time-based split",
        )
    mr.promote(MODEL, version.version, "production", require={"auc": f">= {AUC_FLOOR}"})
    deploy(project)
    return metrics


def deploy(project: fti.Project) -> Any:
    """The ``fraud`` deployment: ``cc_num`` plus the live transaction's features in, enriched
    from the online store (window aggregates, profile), fraud probability out."""
    return project.serving.deploy("fraud", model=f"{MODEL}@production", enrich=True)
