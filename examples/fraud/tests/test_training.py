"""The fraud feature view, training pipeline and online requests on a real project.

The no-skew test is the point of publishing window rows just after their transaction and of
on-demand features: the vector the deployment builds for a live transaction (the raw transaction
in the request, the card's online rows, the on-demand functions) equals, bit for bit and for
every card, the training row the feature view gives the same transaction once the feature
pipeline has processed it.
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
from fti.features import training_data
from fti.pipelines.definitions import OnNewData, spec_of
from fti.serving.deployments import to_inputs
from fti.serving.protocol import parse_infer_request

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
    assert names[0] == "amount" and names[-5:] == training_pipeline.ON_DEMAND_FEATURES
    assert {"tx_count_1h", "amount_mean_7d", "provider_visa", "credit_limit"} <= set(names)
    assert not {"is_fraud", "category", "lat", "lon", "last_lat", "home_lat", "last_datetime"} & set(names)
    deployment = project.serving.get(inference.DEPLOYMENT)
    assert deployment.spec.enrich and deployment.model == "fraud@production"


def test_the_split_is_by_time(trained: tuple[fti.Project, dict[str, float]]) -> None:
    project, metrics = trained
    cut = training_pipeline.split_time(project)
    assert cut == DATA_START + timedelta(days=15)  # the last quarter of 21 days, at midnight
    times = feature_pipeline.feature_groups(project).transactions.read(columns=["datetime"])["datetime"]
    assert metrics["test_rows"] == (times >= pd.Timestamp(cut)).sum()
    assert metrics["train_rows"] == (times < pd.Timestamp(cut)).sum()


def test_served_vector_equals_the_training_row_bit_for_bit(
    trained: tuple[fti.Project, dict[str, float]],
) -> None:
    project, _ = trained
    model = project.model_registry.get_model("fraud@production")
    fv = model.feature_view()
    version = model.training_dataset_version

    # each card's next transaction arrives live: cc_num + the raw transaction...
    profiles = generate_profiles(CARDS, SEED)
    upcoming = generate_transactions(profiles, END, END + timedelta(days=3), SEED)
    live = upcoming.sort_values("datetime", kind="stable").groupby("cc_num").head(1)
    assert len(live) >= CARDS * 0.95
    requests = [inference.request_for(row) for row in live.to_dict("records")]
    assert set(requests[0]) == {"cc_num", "amount", "category", "datetime", "lat", "lon"}
    deployment = project.serving.get(inference.DEPLOYMENT)
    loaded = deployment._load_local()  # the model server's own path: protocol request -> dataplane
    request = parse_infer_request({"inputs": to_inputs(requests)})
    served = loaded.prepare(request).matrix
    answer = deployment.predict(requests)

    # ...then the feature pipeline processes those days, and training data holds the same rows
    feature_pipeline.ingest_transactions(project, END, END + timedelta(days=3), CARDS, SEED)
    fv.create_training_data(start_time=END, description="the live days")
    table = training_data.read(fv, fv.training_dataset(fv.last_training_dataset_version))
    X, _ = training_data.features_and_labels(
        table, fv.feature_names(False), fv.transformer(version), fv.labels
    )
    keys = table.select(["cc_num", "datetime"]).to_pandas().set_index(["cc_num", "datetime"])
    rows = keys.index.get_indexer(list(zip(live["cc_num"], live["datetime"], strict=True)))
    assert (rows >= 0).all()
    expected = X.iloc[rows][fv.feature_names(training_dataset_version=version)].to_numpy(np.float64)
    assert served.shape == expected.shape
    same = (served.view(np.int64) == expected.view(np.int64)) | (np.isnan(served) & np.isnan(expected))
    assert same.all(), np.argwhere(~same)[:5]

    # the deployment may use a faster scorer than the native model (verified equal to ~1e-6)
    np.testing.assert_allclose(answer["predict_proba"], model.predict(expected)["predict_proba"], atol=1e-6)


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
    # production scored on the weak version's own test rows (other tests of this module may have
    # added transactions since production's evaluation, so those rows can differ from its own);
    # the fastest verified scorer may round probabilities differently from the native model
    from sklearn.metrics import roc_auc_score

    fv = training_pipeline.feature_view(project)
    _, x_test, _, y_test = fv.get_training_data(mr.get_model("fraud", 2).training_dataset_version)
    production = mr.get_model("fraud", 1).load()
    expected = roc_auc_score(y_test, production.predict_proba(x_test)[:, 1])
    assert weak.compare.metrics["auc"] == pytest.approx(expected, abs=1e-3)
    assert mr.get_model("fraud@production").version == 1
