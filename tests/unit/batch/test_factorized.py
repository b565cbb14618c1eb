"""Factorized batch scoring of linear models: the same predictions as the materialized join, from
partial scores computed per group row (real feature groups, feature view, registry and catalog)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fti
from fti.errors import ValidationError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ORDERS, CUSTOMERS, MERCHANTS = 600, 40, 12


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def setup_view(
    project: fti.Project, *, max_age: timedelta | None = None, every_order_matched: bool = True
) -> Any:
    """Orders (the spine, with an amount and a label) joined with customers and merchants, each
    with several versions per key over time, and transformations of every kind."""
    fs = project.feature_store
    rng = np.random.default_rng(7)
    customers = fs.get_or_create_feature_group("customers", primary_key=["customer_id"], event_time="ts")
    versions = 3  # each customer changes twice: the point-in-time join must pick the right row
    customers.insert(
        pd.DataFrame(
            {
                "customer_id": np.tile(np.arange(CUSTOMERS), versions),
                "ts": [at(100 * v) for v in range(versions) for _ in range(CUSTOMERS)],
                "age": rng.integers(18, 80, CUSTOMERS * versions).astype(np.int64),
                "balance": rng.normal(1000, 300, CUSTOMERS * versions),
                "visits": rng.poisson(5, CUSTOMERS * versions).astype(np.int64),
                "tier": [["gold", "silver", "bronze"][i % 3] for i in range(CUSTOMERS * versions)],
                "vip": (rng.random(CUSTOMERS * versions) > 0.8),
            }
        )
    )
    merchants = fs.get_or_create_feature_group("merchants", primary_key=["merchant_id"], event_time="ts")
    merchants.insert(
        pd.DataFrame(
            {
                "merchant_id": np.tile(np.arange(MERCHANTS), 2),
                "ts": [at(150 * v) for v in range(2) for _ in range(MERCHANTS)],
                "risk": rng.random(MERCHANTS * 2),
                "volume": rng.lognormal(3, 1, MERCHANTS * 2),
                "country": [["fr", "de", "us", "jp"][i % 4] for i in range(MERCHANTS * 2)],
            }
        )
    )
    orders = fs.get_or_create_feature_group("orders", primary_key=["order_id"], event_time="ts")
    amount = rng.normal(60, 25, ORDERS)
    label = (amount > 70).astype(np.int64) + (rng.random(ORDERS) > 0.7)
    first = 0 if every_order_matched else -5  # a few orders before any customer row
    orders.insert(
        pd.DataFrame(
            {
                "order_id": np.arange(ORDERS),
                "ts": [at(first + i * 0.5) for i in range(ORDERS)],
                "customer_id": rng.integers(0, CUSTOMERS, ORDERS).astype(np.int64),
                "merchant_id": rng.integers(0, MERCHANTS, ORDERS).astype(np.int64),
                "amount": amount,
                "label": label.astype(np.int64),
                "target": amount * 0.3 + rng.normal(0, 1, ORDERS),
            }
        )
    )
    query = (
        orders.select(["amount", "label", "target"])
        .join(customers.select(["age", "balance", "visits", "tier", "vip"]), on=["customer_id"])
        .join(merchants.select(["risk", "volume", "country"]), on=["merchant_id"], max_age=max_age)
    )
    return fs.get_or_create_feature_view(
        "orders_view",
        query=query,
        labels=["label", "target"],
        transformations={
            "amount": "standard_scaler",
            "balance": "standard_scaler",
            "age": "min_max_scaler",
            "visits": "robust_scaler",
            "volume": "log1p",
            "risk": "bucketize(0.25, 0.5, 0.75)",
            "tier": "one_hot_encoder",
            "country": "label_encoder",
        },
    )


def register(project: fti.Project, fv: Any, model: Any, label: str, name: str = "linear") -> Any:
    """Fit ``model`` on a new training dataset of ``fv`` (rows without missing inputs) and
    register it; ``label`` ``"binary"`` is ``label > 0``."""
    version, rows = fv.create_training_data(start_time=at(0))  # orders with a customer row
    names = fv.feature_names(training_dataset_version=version)
    target = (rows["label"] > 0).astype(np.int64) if label == "binary" else rows[label]
    model.fit(rows[names], target)
    return project.model_registry.register(name, model, feature_view=fv, training_dataset_version=version)


def read(result: Any) -> pd.DataFrame:
    frame = result.feature_group.read().drop(columns=["scored_at"])
    return frame.sort_values("order_id").reset_index(drop=True)


def models() -> list[tuple[str, Any, str]]:
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
    from sklearn.svm import LinearSVC

    return [
        ("binary logistic", LogisticRegression(max_iter=500), "binary"),
        ("multinomial logistic", LogisticRegression(max_iter=500), "label"),
        ("linear regression", LinearRegression(), "target"),
        ("ridge", Ridge(alpha=0.5), "target"),
        ("linear svm", LinearSVC(), "label"),
        ("sgd log loss, one-vs-rest", SGDClassifier(loss="log_loss", random_state=0), "label"),
    ]


@pytest.mark.parametrize("case", range(6), ids=[m[0] for m in models()])
def test_factorized_predictions_equal_the_materialized_ones(sqlite_project: fti.Project, case: int) -> None:
    fv = setup_view(sqlite_project, max_age=timedelta(hours=200))
    from sklearn.svm import LinearSVC

    _, model, label = models()[case]
    register(sqlite_project, fv, model, label)
    start, end = at(20), at(280)
    factorized = fti.batch.score(
        sqlite_project,
        "linear",
        start_time=start,
        end_time=end,
        output="fact",
        prefer="factorized",
        chunk_rows=97,
    )
    materialized = fti.batch.score(
        sqlite_project, "linear", start_time=start, end_time=end, output="mat", prefer="native"
    )
    assert (factorized.scorer, materialized.scorer) == ("factorized", "native")
    assert factorized.rows == materialized.rows == 520
    left, right = read(factorized), read(materialized)
    assert left.columns.tolist() == right.columns.tolist()
    floats = [c for c in left.columns if c.startswith("proba_") or (c == "prediction" and label == "target")]
    assert len(floats) == {"binary": 2, "label": 3, "target": 1}[label] or isinstance(model, LinearSVC)
    pd.testing.assert_frame_equal(left.drop(columns=floats), right.drop(columns=floats))
    np.testing.assert_allclose(left[floats].to_numpy(), right[floats].to_numpy(), rtol=1e-9, atol=1e-9)
    # and both are the model on the view's batch data
    batch = fv.get_batch_data(start, end, with_keys=True).sort_values("order_id").reset_index(drop=True)
    expected = model.predict(batch[fv.feature_names()])
    if label == "target":
        np.testing.assert_allclose(left["prediction"].to_numpy(), expected, rtol=1e-9, atol=1e-9)
    else:
        np.testing.assert_array_equal(left["prediction"].to_numpy(), expected)


def test_fastest_chooses_factorized_only_when_the_spine_dwarfs_the_groups(
    sqlite_project: fti.Project,
) -> None:
    from sklearn.linear_model import LogisticRegression

    fv = setup_view(sqlite_project)
    register(sqlite_project, fv, LogisticRegression(max_iter=500), "binary")
    # 600 spine rows x (1 + 11 inputs) materialized, against 600 x (1 + 1 + 2 groups) narrow plus
    # 120 x (1 + 7) + 24 x (1 + 3) group values: 3,456 <= half of 7,200
    assert fti.batch.score(sqlite_project, "linear", output="all").scorer == "factorized"
    # a window of 20 spine rows: the groups' pass costs more than the wide join saves
    few = fti.batch.score(sqlite_project, "linear", start_time=at(0), end_time=at(10), output="few")
    assert few.rows == 20 and few.scorer != "factorized"
    # a forest is not linear: the materialized path
    from sklearn.ensemble import RandomForestClassifier

    register(sqlite_project, fv, RandomForestClassifier(5, random_state=0), "label", name="forest")
    assert fti.batch.score(sqlite_project, "forest", output="forest_out").scorer in {"native", "onnx"}


def test_missing_group_rows_fail_as_on_the_materialized_path(sqlite_project: fti.Project) -> None:
    from sklearn.linear_model import LogisticRegression

    fv = setup_view(sqlite_project, every_order_matched=False)
    register(sqlite_project, fv, LogisticRegression(max_iter=500), "label")
    errors = []
    for prefer in ("native", "factorized"):
        with pytest.raises(ValueError, match="NaN") as caught:
            fti.batch.score(sqlite_project, "linear", output=f"out_{prefer}", prefer=prefer)
        errors.append(type(caught.value))
        with pytest.raises(fti.errors.NotFoundError):  # nothing was written
            sqlite_project.feature_store.get_feature_group(f"out_{prefer}", 1)
    assert errors[0] is errors[1]
    # scored from the first customer row on, both paths agree
    factorized = fti.batch.score(sqlite_project, "linear", start_time=at(0), output="f", prefer="factorized")
    materialized = fti.batch.score(sqlite_project, "linear", start_time=at(0), output="m", prefer="native")
    left, right = read(factorized), read(materialized)
    assert len(left) == ORDERS - 10
    np.testing.assert_allclose(
        left.filter(like="proba_").to_numpy(), right.filter(like="proba_").to_numpy(), rtol=1e-9, atol=1e-9
    )
    assert left["prediction"].tolist() == right["prediction"].tolist()


def test_factorized_is_refused_with_the_reason(sqlite_project: fti.Project) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    fv = setup_view(sqlite_project)
    register(sqlite_project, fv, RandomForestClassifier(5, random_state=0), "label", name="forest")
    with pytest.raises(ValidationError, match="not a scikit-learn linear model"):
        fti.batch.score(sqlite_project, "forest", output="out", prefer="factorized")
    with pytest.raises(ValidationError, match="engine='duckdb'"):
        fti.batch.score(sqlite_project, "forest", output="out", prefer="factorized", engine="spark")
    with pytest.raises(ValidationError, match="prefer must be one of"):
        fti.batch.score(sqlite_project, "forest", output="out", prefer="fact")
    # a view whose filter reads the joined rows
    fs = sqlite_project.feature_store
    orders, customers = fs.get_feature_group("orders", 1), fs.get_feature_group("customers", 1)
    query = orders.select(["amount", "label"]).join(customers.select(["balance"]), on=["customer_id"])
    filtered = fs.get_or_create_feature_view(
        "filtered", query=query.filter(customers.balance > 900.0), labels=["label"]
    )
    register(sqlite_project, filtered, LogisticRegression(), "label", name="filtered_model")
    with pytest.raises(ValidationError, match="filter"):
        fti.batch.score(sqlite_project, "filtered_model", output="out", prefer="factorized")
    assert fti.batch.score(sqlite_project, "filtered_model", output="out").scorer in {"native", "onnx"}


@settings(max_examples=25, deadline=None)
@given(
    classes=st.integers(1, 5),
    features=st.integers(1, 8),
    intercept=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_a_linear_model_splits_into_weights_and_a_head_that_reproduce_it(
    classes: int, features: int, intercept: bool, seed: int
) -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from fti.inference.linear import linear_form
    from fti.inference.native import native_predict

    rng = np.random.default_rng(seed)
    X = rng.normal(0, 2, (60, features))
    if classes == 1:
        model: Any = LinearRegression(fit_intercept=intercept).fit(X, X @ rng.normal(size=features))
    else:
        y = np.arange(60) % classes if classes > 2 else (X[:, 0] > 0).astype(int)
        if len(set(y)) < 2:
            y[0] = 1 - y[0]
        model = LogisticRegression(fit_intercept=intercept, max_iter=300).fit(X, y)
    form = linear_form(model, native_predict)
    assert form is not None
    offset = rng.normal(size=form.weights.shape[0])
    rows = rng.normal(0, 3, (40, features))
    got = form.scorer(offset).predict(rows @ form.weights.T - offset)
    expected = native_predict(model, rows)
    assert set(got) == set(expected)
    for name, value in expected.items():
        if np.asarray(value).dtype.kind == "f":
            np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-9)
        else:
            np.testing.assert_array_equal(got[name], value)
