"""The fraud example's training pipeline: feature view, time-based split, gradient boosting, registry.

The ``fraud`` feature view joins, for every transaction (the spine, holding the ``is_fraud``
label), the card's rolling-window aggregates as of that transaction and the card's profile,
point-in-time correctly, and computes the on-demand features (amount bin, category code, time
since and distance from the previous transaction, distance from home) with the functions of
:mod:`examples.fraud.features`, which the model server runs on live requests. Model-dependent
transformations (one-hot categories, log amounts, a
scaled credit limit) are fitted on the training split only. The test split is the last quarter
of the period: the model is judged on transactions that happened after everything it saw.

Before ``fraud@production`` moves, the new version is evaluated on that test split: overall, per
merchant category and amount band, for fairness across the card holders' age groups, and against
the current production model scored on the same rows. The gate (:data:`GATE`) judges that
evaluation.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import fti
from examples.fraud.feature_pipeline import feature_groups
from examples.fraud.features import ON_DEMAND, REQUEST_FIELDS

if TYPE_CHECKING:
    from fti.registry.evaluation import Evaluation

FEATURE_VIEW = "fraud"
MODEL = "fraud"
AUC_FLOOR = 0.85
SPINE_COLUMNS = ["amount", "category", "lat", "lon"]
"""Selected from the transactions; category, lat and lon are only inputs of on-demand features."""
ON_DEMAND_FEATURES = ["amount_bin", "category_code", "seconds_since_prev", "km_from_prev", "km_from_home"]
PROFILE_FEATURES = ["provider", "credit_limit", "birth_year"]
HOME = ["home_lat", "home_lon"]
LABEL = "is_fraud"
# the evaluation: slices by merchant category (a column of the transactions group, not a model
# input) and amount band; fairness across age groups derived from the holder's birth year (the data
# is from 2026); slices and groups with fewer rows are reported but not gated
SLICES = ["category", fti.bins("amount", [0, 50, 500])]
AGE_GROUPS = fti.bins(
    "birth_year", [1900, 1967, 1987, 2100], labels=["60+", "40-59", "under 40"], name="age_group"
)
MIN_ROWS = 1000
GATE = {
    "auc": [f">= {AUC_FLOOR}", ">= baseline - 0.02"],  # and not worse than production on the same rows
    "auc@slice": ">= 0.8",  # every category and amount band with >= MIN_ROWS rows
    "demographic_parity_difference": "<= 0.05",  # flagged shares of the age groups within 5 points
}
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
        groups.transactions.select([*SPINE_COLUMNS, LABEL])
        .join(groups.windows.select_all(include_primary_key=False, include_event_time=False), on=["cc_num"])
        .join(groups.profiles.select([*PROFILE_FEATURES, *HOME]), on=["cc_num"])
    )
    return project.feature_store.get_or_create_feature_view(
        FEATURE_VIEW,
        version=1,
        query=query,
        labels=[LABEL],
        transformations=TRANSFORMATIONS,
        on_demand=list(ON_DEMAND),
        request_fields=list(REQUEST_FIELDS),
        description="Card transactions with rolling aggregates, profile and on-demand features, "
        "labelled with is_fraud",
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
    evaluate it, promote it to ``fraud@production`` when the evaluation passes :data:`GATE`, and
    (re)deploy ``fraud``."""
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
    print(evaluate(project, version.version).report())
    mr.promote(MODEL, version.version, "production", require=GATE)
    deploy(project)
    return metrics


def evaluate(project: fti.Project, version: int) -> Evaluation:
    """Evaluate ``fraud:<version>`` on its test split (see :data:`SLICES`, :data:`AGE_GROUPS`),
    against ``fraud@production`` on the same rows; stored with the version."""
    return project.model_registry.evaluate(
        f"{MODEL}:{version}",
        slices=SLICES,
        sensitive=[AGE_GROUPS],
        baseline=f"{MODEL}@production",
        min_rows=MIN_ROWS,
    )


def deploy(project: fti.Project) -> Any:
    """The ``fraud`` deployment: ``cc_num`` plus the raw live transaction in (amount, category,
    datetime, lat, lon), enriched from the online store (window aggregates, profile) and with the
    on-demand features computed, fraud probability out."""
    return project.serving.deploy("fraud", model=f"{MODEL}@production", enrich=True)
