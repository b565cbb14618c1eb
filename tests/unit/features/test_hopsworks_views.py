"""Feature views the Hopsworks way: transformation_functions, init_batch_scoring,
get_batch_data(transformed=False, primary_key=, event_time=), training-dataset deletes and
feature logging (fv.log / fv.read_log)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fti.errors import ConflictError, NotFoundError, SchemaError, ValidationError
from fti.features.builtin_transformations import label_encoder, one_hot_encoder, standard_scaler


@pytest.fixture
def view(sqlite_project, request):
    fs = sqlite_project.feature_store
    fg = fs.get_or_create_feature_group("tx", primary_key=["tid"], event_time="ts")
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rng = np.random.default_rng(3)
    n = 30
    fg.insert(
        pd.DataFrame(
            {
                "tid": np.arange(n),
                "ts": [t0 + timedelta(hours=i) for i in range(n)],
                "amount": rng.uniform(1, 100, n).round(2),
                "category": [["food", "travel", "misc"][i % 3] for i in range(n)],
                "fraud_label": (np.arange(n) % 4 == 0).astype(np.int64),
            }
        )
    )
    return fs.get_or_create_feature_view(
        "tx_view",
        query=fg.select(["amount", "category", "fraud_label"]),
        labels=["fraud_label"],
        transformation_functions=[label_encoder("category"), standard_scaler("amount")],
    )


def test_transformation_functions_are_transformations(sqlite_project, view) -> None:
    assert view.transformations == {"category": "label_encoder", "amount": "standard_scaler"}
    fs = sqlite_project.feature_store
    query = view.query
    older = fs.get_or_create_feature_view(
        "tx_view",
        query=query,
        labels=["fraud_label"],
        transformation_functions={"category": fs.get_transformation_function(name="label_encoder"),
                                  "amount": standard_scaler},
    )  # fmt: skip
    assert older.id == view.id  # the same definition
    with pytest.raises(ValidationError, match="bound to a feature, such as label_encoder\\('category'\\)"):
        fs.get_or_create_feature_view("v2", query=query, transformation_functions=[label_encoder])
    with pytest.raises(ValidationError, match="pass transformations or transformation_functions"):
        fs.get_or_create_feature_view(
            "v2",
            query=query,
            transformations={"amount": "log1p"},
            transformation_functions=[one_hot_encoder("category")],
        )
    with pytest.raises(ValidationError, match="unknown transformation function 'nope'"):
        fs.get_transformation_function("nope")


def test_batch_data_untransformed_with_keys_and_a_chosen_training_dataset(view) -> None:
    view.train_test_split(0.2, seed=1)
    view.train_test_split(0.5, seed=2)
    raw = view.get_batch_data(transformed=False)
    assert list(raw.columns) == ["amount", "category"] and raw.category.iloc[0] == "food"
    keyed = view.get_batch_data(primary_key=True, event_time=True)
    assert list(keyed.columns) == ["tid", "ts", "amount", "category"]
    assert list(view.get_batch_data(primary_key=True).columns) == ["tid", "amount", "category"]
    one, two = view.training_dataset(1).transformation_stats, view.training_dataset(2).transformation_stats
    assert one["amount"] != two["amount"]
    view.init_batch_scoring(1)
    scaled = view.get_batch_data()
    expected = (raw.amount - one["amount"]["mean"]) / one["amount"]["std"]
    assert np.allclose(scaled.amount, expected)
    assert np.allclose(view.get_batch_data(training_dataset_version=2).amount,
                       (raw.amount - two["amount"]["mean"]) / two["amount"]["std"])  # fmt: skip
    streamed = pd.concat(t.to_pandas() for t in view.iter_batch_data(batch_rows=7))
    assert np.allclose(np.sort(streamed.amount), np.sort(scaled.amount))
    assert view.get_batch_data(dataframe_type="numpy").shape == (30, 2)
    with pytest.raises(NotFoundError, match="no training dataset version 7"):
        view.init_batch_scoring(7)
    with pytest.raises(ValidationError, match="transformed must be True or False"):
        view.get_batch_data(transformed="no")


def test_deleting_training_datasets(sqlite_project, view) -> None:
    view.create_training_data()
    view.train_test_split(0.2)
    offline = sqlite_project.backends.offline
    table = view.training_dataset(1).table_name
    view.init_batch_scoring(1)
    view.delete_training_dataset(1)
    assert view.training_dataset_versions() == [2] and offline.version(table) is None
    with pytest.raises(NotFoundError, match="no training dataset version 1"):
        view.get_training_data(1)
    assert len(view.get_batch_data()) == 30  # batch scoring falls back to the latest version
    with pytest.raises(NotFoundError):
        view.delete_training_dataset(1)
    # a version a model was trained on is kept unless forced
    from sklearn.linear_model import LogisticRegression

    x, y = view.get_training_data(2, split="train")
    sqlite_project.model_registry.register(
        "m", LogisticRegression().fit(x, y), feature_view=view, training_dataset_version=2
    )
    with pytest.raises(ConflictError, match="used to train model version\\(s\\) m:1"):
        view.delete_all_training_datasets()
    assert view.training_dataset_versions() == [2]
    view.delete_all_training_datasets(force=True)
    assert view.training_dataset_versions() == []


def test_feature_logging(sqlite_project, view) -> None:
    view.train_test_split(0.2)
    raw = view.get_batch_data(transformed=False)
    transformed = view.get_batch_data()
    predictions = np.arange(30) % 2

    class Model:  # what fv.log reads of a model version: its name and version
        name, version = "fraud", 3

    first = view.log(raw.head(10), predictions[:10], training_dataset_version=1, model=Model())
    view.log(transformed_features=transformed.head(10), predictions=predictions[:10], model=Model())
    view.log(
        logging_data=raw.tail(5), predictions=pd.DataFrame({"predict": predictions[-5:]}), model_name="other"
    )
    view.pause_logging()
    assert view.materialize_log(wait=True) == []
    log = view.read_log()
    assert first == [0] and len(log) == 15
    assert list(log.columns[:6]) == [
        "request_id",
        "row",
        "timestamp",
        "model_name",
        "model_version",
        "variant",
    ]
    head = log[log.model_name == "fraud"]
    assert head["predict"].tolist() == predictions[:10].tolist() and head.row.tolist() == list(range(10))
    assert head.amount.tolist() == raw.amount.head(10).tolist() and head.model_version.tolist() == [3] * 10
    assert log[log.model_name == "other"]["predict"].tolist() == predictions[-5:].tolist()
    assert len(view.read_log(model=Model())) == 10 and len(view.read_log(model_name="other")) == 5
    logged = view.read_log(transformed=True)
    assert np.allclose(logged.amount, transformed.amount.head(10))
    group = sqlite_project.feature_store.get_feature_group(view.log_group_name())
    assert len(view.read_log(filter=group.amount > 50)) == int((log.amount > 50).sum())
    assert view.read_log(start_time=datetime.now(UTC) + timedelta(hours=1)).empty
    with pytest.raises(ValidationError, match="10 feature rows but \\[9\\] predictions"):
        view.log(raw.head(10), predictions[:9])
    with pytest.raises(ValidationError, match="needs untransformed_features"):
        view.log(predictions=predictions)
    with pytest.raises(SchemaError):
        view.log(raw.head(3).assign(extra=1), predictions[:3])
    view.delete_log()
    with pytest.raises(NotFoundError, match="has no log yet"):
        view.read_log()
