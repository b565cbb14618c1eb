"""Online feature vectors (FeatureViewServing) on the SQLite online store: equal to batch rows bit
for bit (no skew), one online read per group, passed features, the statistics of a chosen
training-dataset version, and typed errors for bad requests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import NotFoundError, ValidationError
from tests.unit.features._data import at, bits, make_view


def test_skew_feature_vector_equals_batch_row(project, groups) -> None:
    fv = make_view(project, groups)
    fv.train_test_split(test_size=0.2, seed=5)
    fv.init_serving(training_dataset_version=1)
    batch = fv.get_batch_data(with_keys=True)
    names = fv.feature_names()
    assert list(batch.columns) == ["tid", "ts", *names]
    # Every transaction is later than every profile row, so each batch row is "at the latest time"
    # of its entity: the online vector must equal it bit for bit, after all transformations.
    assert len(batch) == 40
    for _, row in batch.iterrows():
        vector = fv.get_feature_vector({"tid": int(row["tid"])})
        assert [bits(v) for v in vector] == [bits(row[n]) for n in names]
    many = fv.get_feature_vectors([{"tid": int(t)} for t in batch["tid"]])
    assert [[bits(v) for v in r] for r in many] == [
        [bits(row[n]) for n in names] for _, row in batch.iterrows()
    ]
    window = fv.get_batch_data(start_time=at(20), end_time=at(30))
    assert len(window) == 10
    unordered = fv.get_batch_data(with_keys=True, order=False).sort_values("ts", ignore_index=True)
    pd.testing.assert_frame_equal(unordered, batch)
    arrow = fv.get_batch_data(return_type="arrow")
    assert arrow.column_names == names and arrow.num_rows == 40
    assert fv.get_batch_data(return_type="polars").height == 40


def test_feature_vectors_passed_features_missing_keys_and_return_types(project, groups) -> None:
    fv = make_view(project, groups, transformations={"amount": "standard_scaler"})
    fv.create_training_data()
    stats = fv.training_dataset(1).transformation_stats["amount"]
    names = fv.feature_names()
    assert "is_fraud" not in names
    vector = fv.get_feature_vector({"tid": 3}, passed_features={"amount": 9.5, "p_city": "lima"})
    assert vector[names.index("amount")] == (9.5 - stats["mean"]) / stats["std"]
    assert vector[names.index("p_city")] == "lima"
    with pytest.raises(NotFoundError, match=r"no online row in feature group 'transactions'.*allow_missing"):
        fv.get_feature_vector({"tid": 999})
    missing = fv.get_feature_vector({"tid": 999}, allow_missing=True)
    assert all(v is None or np.isnan(v) for v in missing)
    entries = [{"tid": 1}, {"tid": 2}]
    array = fv.get_feature_vectors(entries, return_type="numpy")
    assert array.shape == (2, len(names))
    frame = fv.get_feature_vectors(entries, return_type="pandas")
    assert list(frame.columns) == names and frame["cc_num"].tolist() == [1, 2]
    assert fv.get_feature_vectors(entries, return_type="polars").shape == (2, len(names))
    per_entry = fv.get_feature_vectors(entries, passed_features=[{"spend": 1.0}, {"spend": 2.0}])
    assert [r[names.index("spend")] for r in per_entry] == [1.0, 2.0]
    assert fv.get_feature_vectors([]) == []
    # Hopsworks' keyword is entry=, fti's entries=: both name the same list
    assert (
        fv.get_feature_vectors(entry=entries)
        == fv.get_feature_vectors(entries=entries)
        == fv.get_feature_vectors(entries)
    )
    with pytest.raises(ValidationError, match="entries must be a list of mappings"):
        fv.get_feature_vectors()


def test_one_online_read_per_feature_group(project, groups) -> None:
    fv = make_view(project, groups)
    fv.create_training_data()
    online = project.backends.online
    calls: list[tuple[str, int]] = []
    real_read = online.read_columns

    def counting_read(table: str, keys: Any, columns: Any) -> Any:
        calls.append((table, len(keys)))
        return real_read(table, keys, columns)

    online.read_columns = counting_read  # type: ignore[method-assign]
    try:
        fv.get_feature_vectors([{"tid": i} for i in range(30)])
        assert sorted(calls) == sorted((g.table_name, 30) for g in groups.values())
        calls.clear()
        fv.get_feature_vector({"tid": 1})
        assert len(calls) == 3
    finally:
        del online.read_columns


def test_unseen_categories_never_raise(project, groups) -> None:
    fv = make_view(project, groups)
    fv.create_training_data()
    names = fv.feature_names()
    vector = fv.get_feature_vector({"tid": 0}, passed_features={"category": "unheard", "p_city": "atlantis"})
    assert [vector[names.index(c)] for c in ("category_food", "category_misc", "category_travel")] == [
        0.0
    ] * 3
    assert vector[names.index("p_city")] == fti.features.transformations.UNSEEN_CATEGORY == -1  # type: ignore[attr-defined]


def test_init_serving_picks_the_statistics_of_a_version(project, groups) -> None:
    fv = make_view(project, groups, transformations={"amount": "standard_scaler"})
    fv.train_test_split(test_size=0.5, seed=1)
    s1 = fv.training_dataset(1).transformation_stats["amount"]
    assert (
        fv.get_feature_vector({"tid": 0}, passed_features={"amount": 10.0})[1]
        == (10.0 - s1["mean"]) / s1["std"]
    )
    fv.train_test_split(test_size=0.5, seed=2)  # unpinned: serving follows the latest version
    s2 = fv.training_dataset(2).transformation_stats["amount"]
    assert (
        fv.get_feature_vector({"tid": 0}, passed_features={"amount": 10.0})[1]
        == (10.0 - s2["mean"]) / s2["std"]
    )
    fv.init_serving(training_dataset_version=1)
    got = fv.get_feature_vector({"tid": 0}, passed_features={"amount": 10.0})[1]
    assert got == (10.0 - s1["mean"]) / s1["std"]
    fresh = project.feature_store.get_feature_view("fraud")  # default: the latest version
    assert (
        fresh.get_feature_vector({"tid": 0}, passed_features={"amount": 10.0})[1]
        == (10.0 - s2["mean"]) / s2["std"]
    )
    with pytest.raises(NotFoundError, match="no training dataset version 9"):
        fv.init_serving(training_dataset_version=9)


def test_fitted_transformations_need_training_data(project, groups) -> None:
    fv = make_view(project, groups)
    with pytest.raises(ValidationError, match="create training data first"):
        fv.get_feature_vector({"tid": 1})
    plain = make_view(project, groups, name="plain", transformations={"spend": "log1p"})
    assert len(plain.get_feature_vector({"tid": 1})) == 8


def test_feature_vector_request_missing_a_key_column(project, groups) -> None:
    fv = make_view(project, groups, transformations={})
    with pytest.raises(ValidationError, match=r"missing key column\(s\) \['tid'\]"):
        fv.get_feature_vector({"cc_num": 1})
    with pytest.raises(ValidationError, match=r"missing key column\(s\) \['tid'\]"):
        fv.get_feature_vectors([{"tid": 1}, {"id": 2}])
    with pytest.raises(ValidationError, match="unknown feature"):
        fv.get_feature_vector({"tid": 1}, passed_features={"is_fraud": 1})
    with pytest.raises(ValidationError, match="return_type"):
        fv.get_feature_vectors([{"tid": 1}], return_type="dict")


def test_offline_only_groups_are_supplied_by_passed_features(project, groups) -> None:
    risk = project.feature_store.get_or_create_feature_group("risk", primary_key=["cc_num"])
    risk.insert(pd.DataFrame({"cc_num": range(8), "risk": np.linspace(0, 1, 8)}))
    query = (
        groups["tx"]
        .select(["amount"])
        .join(risk.select_all(include_primary_key=False, include_event_time=False))
    )
    fv = project.feature_store.get_or_create_feature_view("offline_mix", query=query)
    assert fv.get_batch_data()["risk"].tolist()[:3] == [0.0, 1 / 7, 2 / 7]
    with pytest.raises(ValidationError, match=r"'risk' is not online-enabled, so its features \['risk'\]"):
        fv.get_feature_vector({"tid": 1})
    assert fv.get_feature_vector({"tid": 1}, passed_features={"risk": 0.25}) == [
        groups["tx"].online_lookup([{"tid": 1}])[0]["amount"],
        0.25,
    ]


def test_serving_objects_keep_their_versions_statistics_and_query_no_catalog(project, groups) -> None:
    from sqlalchemy import event

    fv = make_view(project, groups, transformations={"amount": "standard_scaler"})
    fv.train_test_split(test_size=0.5, seed=1)
    fv.train_test_split(test_size=0.5, seed=2)
    s1, s2 = (fv.training_dataset(v).transformation_stats["amount"] for v in (1, 2))
    assert s1 != s2
    one, two = fv.serving(1), fv.serving(training_dataset_version=2)
    assert (one.training_dataset_version, two.training_dataset_version) == (1, 2)
    assert fv.serving().training_dataset_version == 2  # default: the latest version
    assert one.primary_key == ["tid"] and one.feature_names == fv.feature_names(training_dataset_version=1)
    i = one.feature_names.index("amount")
    stored = [row["amount"] for row in groups["tx"].online_lookup([{"tid": 1}, {"tid": 2}])]

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = project.backends.catalog.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            v1 = one.get_feature_vector({"tid": 0}, passed_features={"amount": 10.0})
            v2 = two.get_feature_vector({"tid": 0}, passed_features={"amount": 10.0})
            m1 = one.get_feature_vectors([{"tid": 1}, {"tid": 2}], return_type="numpy")
            m2 = two.get_feature_vectors([{"tid": 1}, {"tid": 2}], return_type="numpy")
        assert statements == []
        fv.training_dataset_versions()  # the counter does see catalog queries
        assert any("FROM training_datasets" in s for s in statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert v1[i] == (10.0 - s1["mean"]) / s1["std"] and v2[i] == (10.0 - s2["mean"]) / s2["std"]
    assert m1[:, i].tolist() == [(a - s1["mean"]) / s1["std"] for a in stored]
    assert m2[:, i].tolist() == [(a - s2["mean"]) / s2["std"] for a in stored]
    # the view's own vectors follow the latest version; a serving object stays on its own
    fv.train_test_split(test_size=0.5, seed=3)
    s3 = fv.training_dataset(3).transformation_stats["amount"]
    assert (
        fv.get_feature_vector({"tid": 0}, passed_features={"amount": 10.0})[i]
        == (10.0 - s3["mean"]) / s3["std"]
    )
    assert one.get_feature_vector({"tid": 0}, passed_features={"amount": 10.0}) == v1
    with pytest.raises(NotFoundError, match="no training dataset version 9"):
        fv.serving(9)
    with pytest.raises(ValidationError, match="training dataset version must be an integer >= 1"):
        fv.serving(0)


def test_a_feature_appended_after_the_last_insert_reads_null_in_vectors(project) -> None:
    """The online rows predate the appended feature: the vector holds None there (the group's
    stored rows read null for it too), not a KeyError from inside the lookup."""
    from datetime import UTC, datetime

    import pandas as pd

    import fti

    fs = project.feature_store
    fg = fs.get_or_create_feature_group("cards", primary_key=["k"], event_time="ts", online_enabled=True)
    fg.insert(pd.DataFrame({"k": [1], "ts": [datetime(2024, 1, 1, tzinfo=UTC)], "a": [1.0]}))
    fg.append_features([fti.Feature("b", "float64")])
    fv = fs.get_or_create_feature_view(
        "cards_v", query=fg.select_all(include_primary_key=False, include_event_time=False)
    )
    fv.create_training_data()
    assert fv.get_feature_vector({"k": 1}) == [1.0, None]
    assert fv.get_feature_vectors([{"k": 1}], return_type="list") == [[1.0, None]]
    assert fg.read()["b"].isna().all()


def test_lookup_returns_the_untransformed_values_of_the_same_read(project, groups) -> None:
    """What the model server logs: the raw values the vectors were computed from, in one online
    read per group, with passed features applied and equal to the groups' stored rows."""
    fv = make_view(project, groups)
    fv.create_training_data()
    serving = fv.serving(1)
    entries = [{"tid": 3}, {"tid": 11}]
    online = project.backends.online
    calls: list[str] = []
    real_read = online.read_columns

    def counting_read(table: str, keys: Any, columns: Any) -> Any:
        calls.append(table)
        return real_read(table, keys, columns)

    online.read_columns = counting_read  # type: ignore[method-assign]
    try:
        served = serving.lookup(entries, passed_features=[{"amount": 1.25}, None])
    finally:
        del online.read_columns
    assert len(calls) == len(groups)
    expected = serving.get_feature_vectors(
        entries, passed_features=[{"amount": 1.25}, None], return_type="numpy"
    )
    np.testing.assert_array_equal(served.matrix, expected)
    raw = dict(zip(serving.raw_feature_names, served.raw, strict=True))
    assert serving.raw_feature_names == fv.feature_names(transformed=False)
    tx = groups["tx"].read().set_index("tid")
    assert raw["amount"] == [1.25, tx.loc[11, "amount"]]  # passed, then as stored (not scaled)
    assert raw["category"] == [tx.loc[3, "category"], tx.loc[11, "category"]]  # not one-hot
    assert raw["cc_num"] == [3, 3]
    latest_city = groups["profiles"].read().sort_values("ts").groupby("cc_num").last()["city"]
    assert raw["p_city"] == [latest_city[3], latest_city[3]]
    assert serving.raw_feature_dtypes["category"] == "string"
    assert serving.key_dtypes == {"tid": "int64"}
    empty = serving.lookup([])
    assert empty.matrix.shape == (0, len(serving.feature_names)) and empty.raw == [[]] * len(raw)
