"""Lineage with real feature views and training datasets (SQLite and PostgreSQL catalogs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import NotFoundError, ValidationError

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def fraud_view(project: fti.Project) -> Any:
    fs = project.feature_store
    tx = fs.get_or_create_feature_group("transactions", primary_key=["tid"], event_time="ts")
    n = 30
    rng = np.random.default_rng(1)
    amount = rng.normal(50, 20, n)
    tx.insert(
        pd.DataFrame(
            {
                "tid": np.arange(n),
                "ts": [T0 + timedelta(hours=i) for i in range(n)],
                "amount": amount,
                "category": [["food", "travel"][i % 2] for i in range(n)],
                "is_fraud": (amount > 55).astype(np.int64),
            }
        )
    )
    return fs.get_or_create_feature_view(
        "fraud",
        query=tx.select(["amount", "category", "is_fraud"]),
        labels=["is_fraud"],
        transformations={"category": "one_hot_encoder"},
    )


def test_lineage_both_ways(project: fti.Project, fraud_view: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    fv = fraud_view
    x_train, x_test, y_train, y_test = fv.train_test_split(test_size=0.3, seed=1)
    td_version = fv.training_dataset_versions()[-1]
    mr = project.model_registry
    with project.run("fraud-training", params={"C": 0.5}) as run:
        clf = LogisticRegression(C=0.5).fit(x_train, y_train.to_numpy().ravel())
        run.log_metric("accuracy", float(clf.score(x_test, y_test.to_numpy().ravel())))
        mv = mr.register(
            "fraud",
            clf,
            run=run,
            feature_view=fv,
            training_dataset_version=td_version,
            metrics={"accuracy": 1.0},
            input_example=x_train.head(5),
        )
    assert (mv.feature_view_name, mv.feature_view_version, mv.training_dataset_version) == (
        "fraud",
        1,
        td_version,
    )
    assert mv.signature.input_names == fv.feature_names() == ["amount", "category_food", "category_travel"]
    assert [t.datatype for t in mv.signature.inputs] == ["FP64", "FP64", "FP64"]
    lineage = mv.lineage
    assert lineage.run is not None and lineage.run.params == {"C": 0.5}
    assert lineage.run.git_commit == run.git_commit and lineage.run.python_version == run.python_version
    assert lineage.input_versions == fv.training_dataset(td_version).input_versions
    assert lineage.input_versions  # the Delta version of the transactions table
    assert lineage.to_dict()["feature_view"] == "fraud"
    assert mv.feature_view().id == fv.id
    # the other direction: from the feature view and from the run to the model versions
    other = mr.register("other", clf)
    assert [(m.name, m.version) for m in fv.models()] == [("fraud", 1)]
    assert [m.name for m in mr.list_models(feature_view=("fraud", 1))] == ["fraud"]
    assert [m.name for m in run.models()] == ["fraud"]
    assert other.lineage.run is None and other.feature_view() is None


def test_training_dataset_version_must_belong_to_the_feature_view(
    project: fti.Project, fraud_view: Any
) -> None:
    from sklearn.linear_model import LogisticRegression

    fv = fraud_view
    version, df = fv.create_training_data()
    clf = LogisticRegression().fit(df[fv.feature_names()], df["is_fraud"])
    mr = project.model_registry
    with pytest.raises(
        ValidationError, match=r"training dataset version 7 does not belong to feature view 'fraud'"
    ):
        mr.register("fraud", clf, feature_view=fv, training_dataset_version=7)
    with pytest.raises(NotFoundError, match="feature view 'nope' version 1 not found"):
        mr.register("fraud", clf, feature_view=("nope", 1))
    with pytest.raises(ValidationError, match="differ from the feature view's feature names"):
        mr.register(
            "fraud",
            clf,
            feature_view=fv,
            training_dataset_version=version,
            input_example=df[list(reversed(fv.feature_names()))].head(2),
        )
    assert mr.list_models() == []
    mv = mr.register("fraud", clf, feature_view=fv, training_dataset_version=version)
    assert mv.training_dataset_version == version


def test_lineage_of_a_model_trained_while_a_joined_group_was_empty(
    project: fti.Project, fraud_view: Any
) -> None:
    """A joined group without any commit at training time has no input version (None): the
    lineage says so instead of failing."""
    from sklearn.linear_model import LogisticRegression

    fs = project.feature_store
    tx = fs.get_feature_group("transactions")
    declared = [fti.Feature("tid", "int64"), fti.Feature("age", "float64")]
    empty = fs.get_or_create_feature_group("empty_profiles", primary_key=["tid"], features=declared)
    fv = fs.get_or_create_feature_view(
        "with_empty",
        query=tx.select(["amount", "is_fraud"]).join(empty.select(["age"]), on=["tid"]),
        labels=["is_fraud"],
    )
    x, _, y, _ = fv.train_test_split(test_size=0.3, seed=1)
    assert fv.training_dataset(1).input_versions[empty.table_name] is None
    model = project.model_registry.register(
        "with_empty",
        LogisticRegression().fit(x[["amount"]], y.to_numpy().ravel()),
        feature_view=fv,
        training_dataset_version=1,
    )
    lineage = model.lineage
    assert lineage.input_versions == {tx.table_name: 0, empty.table_name: None}
    assert lineage.to_dict()["input_versions"][empty.table_name] is None
