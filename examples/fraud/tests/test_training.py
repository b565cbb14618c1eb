"""The fraud feature view, training pipeline and online requests on a real project.

The no-skew test is the point of publishing window rows just after their transaction: the vector
the deployment builds for a live transaction (online rows + request-time features) equals the row
the feature view gives the same transaction once the feature pipeline has processed it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fti
from examples.fraud import feature_pipeline, inference, training_pipeline
from examples.fraud.generator import CATEGORIES, DATA_START, generate_profiles, generate_transactions
from examples.fraud.pipelines import card_profiles, fraud_features, score_fraud, train_fraud
from fti.errors import ValidationError
from fti.pipelines.definitions import OnNewData, spec_of

CARDS, DAYS, SEED = 200, 21, 7
END = DATA_START + timedelta(days=DAYS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[fti.Project, dict[str, float]]]:
    home: Path = tmp_path_factory.mktemp("fraud") / "home"
    project = fti.connect(home=home)
    feature_pipeline.ingest_profiles(project, CARDS, SEED)
    feature_pipeline.ingest_transactions(project, DATA_START, END, CARDS, SEED)
    metrics = training_pipeline.train(project, max_iter=100)
    yield project, metrics
    project.close()


def test_training_registers_promotes_and_deploys(trained: tuple[fti.Project, dict[str, float]]) -> None:
    project, metrics = trained
    assert metrics["auc"] >= training_pipeline.AUC_FLOOR
    model = project.model_registry.get_model("fraud@production")
    assert model.metrics == pytest.approx(metrics)
    assert model.feature_view_name == "fraud" and model.training_dataset_version is not None
    names = [s.name for s in model.signature.inputs]
    assert names[:6] == training_pipeline.TRANSACTION_FEATURES
    assert {"tx_count_1h", "amount_mean_7d", "provider_visa", "credit_limit"} <= set(names)
    assert "is_fraud" not in names
    deployment = project.serving.get(inference.DEPLOYMENT)
    assert deployment.spec.enrich and deployment.model == "fraud@production"


def test_the_split_is_by_time(trained: tuple[fti.Project, dict[str, float]]) -> None:
    project, metrics = trained
    cut = training_pipeline.split_time(project)
    assert cut == DATA_START + timedelta(days=15)  # the last quarter of 21 days, at midnight
    times = feature_pipeline.feature_groups(project).transactions.read(columns=["datetime"])["datetime"]
    assert metrics["test_rows"] == (times >= pd.Timestamp(cut)).sum()
    assert metrics["train_rows"] == (times < pd.Timestamp(cut)).sum()


def test_online_vector_equals_the_feature_view_row(trained: tuple[fti.Project, dict[str, float]]) -> None:
    project, _ = trained
    model = project.model_registry.get_model("fraud@production")
    fv = model.feature_view()
    fv.init_serving(training_dataset_version=model.training_dataset_version)

    # the next day's first transactions of a few cards arrive live...
    profiles = generate_profiles(CARDS, SEED)
    upcoming = generate_transactions(profiles, END, END + timedelta(days=1), SEED)
    live = upcoming.groupby("cc_num").head(1).head(8)
    requests = [inference.request_for(project, row) for row in live.to_dict("records")]
    online = fv.get_feature_vectors(
        [{"cc_num": r["cc_num"]} for r in requests],
        passed_features=[{k: v for k, v in r.items() if k != "cc_num"} for r in requests],
        return_type="pandas",
    )
    # ...then the feature pipeline processes that day, and the feature view serves the same rows
    feature_pipeline.ingest_transactions(project, END, END + timedelta(days=1), CARDS, SEED)
    batch = fv.get_batch_data(END, END + timedelta(days=1), with_keys=True)
    batch = batch.set_index(["cc_num", "datetime"]).loc[
        list(zip(live["cc_num"], live["datetime"], strict=True))
    ]
    np.testing.assert_allclose(online.to_numpy(float), batch[online.columns].to_numpy(float), rtol=1e-12)

    answer = project.serving.get(inference.DEPLOYMENT).predict(requests)
    # the deployment may use a faster scorer than the native model (verified equal to ~1e-6)
    np.testing.assert_allclose(answer["predict_proba"], model.predict(online)["predict_proba"], atol=1e-6)


def test_split_time_needs_data(sqlite_project: fti.Project) -> None:
    feature_pipeline.feature_groups(sqlite_project)
    with pytest.raises(ValidationError, match="run the fraud_features pipeline first"):
        training_pipeline.split_time(sqlite_project)


def test_the_pipelines_are_scheduled() -> None:
    specs = {f.__name__: spec_of(f) for f in (card_profiles, fraud_features, train_fraud, score_fraud)}
    assert all(specs.values())
    assert specs["fraud_features"].schedule.cron == "0 * * * *"  # type: ignore[union-attr]
    assert specs["card_profiles"].schedule.cron == "0 2 * * *"  # type: ignore[union-attr]
    assert specs["score_fraud"].schedule.interval == timedelta(days=1)  # type: ignore[union-attr]
    assert specs["score_fraud"].kind == "inference" and specs["train_fraud"].kind == "training"
    trigger = specs["train_fraud"].trigger  # type: ignore[union-attr]
    assert isinstance(trigger, OnNewData) and trigger.feature_group == feature_pipeline.TRANSACTIONS


def test_promotion_judges_an_evaluation_on_the_test_split(
    trained: tuple[fti.Project, dict[str, float]],
) -> None:
    """Runs last: it trains a second (weak) version."""
    from fti.registry.promotion import PromotionRejectedError

    project, metrics = trained
    mr = project.model_registry
    evaluation = mr.get_evaluation("fraud@production")
    assert evaluation.rows == metrics["test_rows"] and evaluation.metrics["auc"] == pytest.approx(
        metrics["auc"]
    )
    assert evaluation.slices == ["category", "amount bins [0, 50, 500]"]
    assert {s.value for s in evaluation.by_slice if s.feature == "category"} <= set(CATEGORIES)
    assert sum(s.rows for s in evaluation.by_slice if s.feature == "category") == evaluation.rows
    groups = evaluation.fairness["age_group"].groups
    assert [g.value for g in groups] == ["60+", "40-59", "under 40"] and sum(
        g.rows for g in groups
    ) == evaluation.rows
    assert (
        evaluation.compare is not None and evaluation.compare.model is None
    )  # no production model before it
    assert mr.alias_history("fraud", "production")[-1].reason.endswith(f"on evaluation {evaluation.number}")
    # a stump: refused, among others for being worse than production on the same rows
    with pytest.raises(PromotionRejectedError) as info:
        training_pipeline.train(project, max_iter=1, max_leaf_nodes=2)
    assert any(
        "auc >= baseline - 0.02: fraud:2" in f and "of baseline fraud:1" in f for f in info.value.failures
    )
    weak = mr.get_evaluation("fraud:2")
    assert weak.compare is not None and weak.compare.model == "fraud:1"
    # production on the same rows (the fastest verified scorer may round probabilities differently)
    assert weak.compare.metrics["auc"] == pytest.approx(evaluation.metrics["auc"], abs=1e-3)
    assert mr.get_model("fraud@production").version == 1
