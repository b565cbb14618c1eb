"""Feature views end to end on real Delta tables, a real catalog (SQLite and PostgreSQL) and the
SQLite online store: training datasets, splits, reproducibility, no leakage, no skew, vectors."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import AlreadyExistsError, NotFoundError, SchemaError, ValidationError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TRANSFORMS = {
    "amount": "standard_scaler",
    "category": "one_hot_encoder",
    "p_age": "min_max_scaler",
    "p_city": "label_encoder",
    "spend": "log1p",
    "n_tx": "bucketize(1, 5, 10)",
    "p_score": "robust_scaler",
}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def groups(project: fti.Project) -> dict[str, Any]:
    fs = project.feature_store
    tx = fs.get_or_create_feature_group(
        "transactions", primary_key=["tid"], event_time="ts", online_enabled=True
    )
    profiles = fs.get_or_create_feature_group(
        "profiles", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    windows = fs.get_or_create_feature_group("windows", primary_key=["cc_num"], online_enabled=True)
    n = 40
    rng = np.random.default_rng(7)
    tx.insert(
        pd.DataFrame(
            {
                "tid": np.arange(n),
                "ts": [at(10 + i) for i in range(n)],
                "cc_num": np.arange(n) % 8,
                "amount": rng.normal(50, 20, n).round(3),
                "category": [["food", "travel", "misc"][i % 3] for i in range(n)],
                "is_fraud": (np.arange(n) % 5 == 0).astype(np.int64),
            }
        )
    )
    profiles.insert(
        pd.DataFrame(
            {
                "cc_num": list(range(8)) * 2,
                "ts": [at(0)] * 8 + [at(5)] * 8,
                "age": rng.integers(18, 90, 16).astype(float),
                "city": [["paris", "rome", "oslo"][i % 3] for i in range(16)],
                "score": rng.normal(0, 1, 16),
            }
        )
    )
    windows.insert(
        pd.DataFrame(
            {"cc_num": range(8), "spend": rng.uniform(0, 1000, 8), "n_tx": [0, 1, 3, 5, 7, 10, 12, 2]}
        )
    )
    return {"tx": tx, "profiles": profiles, "windows": windows}


def make_view(project: fti.Project, groups: dict[str, Any], name: str = "fraud", **kwargs: Any) -> Any:
    query = (
        groups["tx"]
        .select(["cc_num", "amount", "category", "is_fraud"])
        .join(groups["profiles"].select_all(), on=["cc_num"], prefix="p_")
        .join(groups["windows"].select_all(), on=["cc_num"])
    )
    kwargs.setdefault("transformations", TRANSFORMS)
    return project.feature_store.get_or_create_feature_view(name, query=query, labels=["is_fraud"], **kwargs)


def bits(value: Any) -> Any:
    """Floats by their bit pattern, so equality means bit-identical."""
    if isinstance(value, (float, np.floating)):
        return struct.pack("<d", float(value))
    return value.item() if hasattr(value, "item") else value


def test_create_get_list_and_idempotency(project, groups) -> None:
    fs = project.feature_store
    fv = make_view(project, groups, description="fraud model")
    assert (fv.name, fv.version, fv.labels, fv.primary_key) == ("fraud", 1, ["is_fraud"], ["tid"])
    assert fv.description == "fraud model"
    again = make_view(project, groups)
    assert again.id == fv.id
    assert fs.get_feature_view("fraud").id == fv.id
    assert [(v.name, v.version) for v in fs.list_feature_views()] == [("fraud", 1)]
    assert fv.feature_names(transformed=False) == [
        "cc_num", "amount", "category", "p_age", "p_city", "p_score", "spend", "n_tx"
    ]  # fmt: skip
    with pytest.raises(AlreadyExistsError, match="different transformations"):
        make_view(project, groups, transformations={"amount": "log1p"})
    with pytest.raises(NotFoundError, match="feature view 'nope' not found"):
        fs.get_feature_view("nope")
    assert fv.training_dataset_versions() == [] and not fv.has_training_dataset(1)


def test_training_data_splits_and_feature_names(project, groups) -> None:
    fv = make_view(project, groups)
    version, df = fv.create_training_data(description="all rows")
    assert version == 1 and len(df) == 40
    names = fv.feature_names()
    assert names == [
        "cc_num", "amount", "category_food", "category_misc", "category_travel",
        "p_age", "p_city", "p_score", "spend", "n_tx",
    ]  # fmt: skip
    assert list(df.columns) == [*names, "is_fraud"]
    assert fv.feature_dtypes()["category_food"] == "float64" and fv.feature_dtypes()["n_tx"] == "int64"
    assert df["amount"].mean() == pytest.approx(0.0, abs=1e-12)

    x_train, x_test, y_train, y_test = fv.train_test_split(test_size=0.25, seed=3)
    assert (len(x_train), len(x_test), len(y_train), len(y_test)) == (30, 10, 30, 10)
    assert fv.last_training_dataset_version == 2
    again = fv.train_test_split(test_size=0.25, seed=3)
    pd.testing.assert_frame_equal(again[1], x_test)  # same seed, same split
    assert not fv.train_test_split(test_size=0.25, seed=4)[1]["cc_num"].equals(x_test["cc_num"])

    x_train, x_test, y_train, y_test = fv.train_test_split(split="time", test_start=at(40))
    assert (len(x_train), len(x_test)) == (30, 10)
    assert x_test["cc_num"].tolist() == [i % 8 for i in range(30, 40)]

    parts = fv.train_validation_test_split(validation_size=0.2, test_size=0.1, seed=1)
    assert [len(p) for p in parts] == [28, 8, 4, 28, 8, 4]
    parts = fv.train_validation_test_split(split="time", validation_start=at(30), test_start=at(45))
    assert [len(p) for p in parts[:3]] == [20, 15, 5]
    record = fv.training_dataset(7)
    assert record.row_counts == {"total": 40, "train": 20, "validation": 15, "test": 5}
    assert record.split["validation_start"] == at(30)
    assert fv.training_dataset_versions() == [1, 2, 3, 4, 5, 6, 7]
    x_val, _ = fv.get_training_data(7, split="validation")
    pd.testing.assert_frame_equal(x_val, parts[1])


def test_reproducible_after_new_inserts(project, groups) -> None:
    fv = make_view(project, groups)
    x_train, *_ = fv.train_test_split(test_size=0.3, seed=0)
    before = fv.get_training_data(1)
    record = fv.training_dataset(1)
    groups["tx"].insert(
        pd.DataFrame(
            {
                "tid": [100],
                "ts": [at(100)],
                "cc_num": [1],
                "amount": [1e6],
                "category": ["new"],
                "is_fraud": [1],
            }
        )
    )
    groups["profiles"].insert(
        pd.DataFrame({"cc_num": [1], "ts": [at(6)], "age": [1.0], "city": ["x"], "score": [9.0]})
    )
    after = fv.get_training_data(1)
    for a, b in zip(before, after, strict=True):
        pd.testing.assert_frame_equal(a, b) if isinstance(
            a, pd.DataFrame
        ) else pd.testing.assert_series_equal(a, b)
    pd.testing.assert_frame_equal(after[0], x_train)
    assert fv.training_dataset(1).input_versions == record.input_versions
    assert record.input_versions == {g.table_name: 0 for g in groups.values()}
    assert record.table_name.startswith("default__fv_fraud__v1__td1_")
    assert project.backends.offline.version(record.table_name) == record.table_version == 0
    # a new version sees the new rows
    _, df = fv.create_training_data()
    assert len(df) == 41


def test_no_leakage_statistics_come_from_the_training_split_only(project, groups) -> None:
    fv = make_view(project, groups)
    fv.train_test_split(test_size=0.25, seed=11)
    raw_train, _ = fv.get_training_data(1, split="train", transformed=False)
    raw_all = pd.concat(fv.get_training_data(1, transformed=False)[:2])
    stats = fv.training_dataset(1).transformation_stats
    amount = raw_train["amount"].to_numpy()
    assert stats["amount"] == {"mean": float(np.mean(amount)), "std": float(np.std(amount))}
    assert stats["amount"]["mean"] != float(np.mean(raw_all["amount"]))
    age = raw_train["p_age"].dropna().to_numpy()
    assert stats["p_age"] == {"min": float(age.min()), "max": float(age.max())}
    score = raw_train["p_score"].dropna().to_numpy()
    q25, median, q75 = np.percentile(score, [25, 50, 75])
    assert stats["p_score"] == {"median": median, "q25": q25, "q75": q75}
    assert stats["category"] == {"categories": sorted(raw_train["category"].unique())}
    x_train, _ = fv.get_training_data(1, split="train")
    expected = (amount - stats["amount"]["mean"]) / stats["amount"]["std"]
    assert [bits(v) for v in x_train["amount"]] == [bits(v) for v in expected]


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


def test_iter_batch_data_streams_the_rows_of_get_batch_data(project, groups) -> None:
    import pyarrow as pa

    fv = make_view(project, groups)
    fv.train_test_split(test_size=0.2, seed=5)
    spine_only = project.feature_store.get_or_create_feature_view(
        "spine_only",
        query=groups["tx"].select_all(),
        labels=["is_fraud"],
        transformations={"amount": "log1p"},
    )
    cases = [(fv, None, None, 40), (fv, at(20), at(31), 11), (spine_only, None, None, 40)]
    cases += [(spine_only, at(20), at(31), 11), (spine_only, at(100), None, 0)]
    for view, start, end, rows in cases:
        batches = list(view.iter_batch_data(start, end, batch_rows=7, with_keys=True))
        assert [b.num_rows for b in batches] == [7] * (rows // 7) + ([rows % 7] if rows % 7 else [])
        expected = view.get_batch_data(start, end, with_keys=True, order=False).sort_values("tid")
        if not rows:
            assert expected.empty
            continue
        got = pa.concat_tables(batches).to_pandas().sort_values("tid")
        assert list(got.columns) == ["tid", "ts", *view.feature_names()]
        assert [[bits(v) for v in r] for r in got.itertuples(index=False)] == [
            [bits(v) for v in r] for r in expected.itertuples(index=False)
        ]
    # without keys, the model's inputs only; a reader closed early releases its query
    stream = spine_only.iter_batch_data(batch_rows=32, threads=1, memory_limit="256MB")
    first = next(stream)
    assert first.column_names == spine_only.feature_names() and first.num_rows == 32
    stream.close()
    # inputs are checked at the call, before any next()
    with pytest.raises(ValidationError, match="batch_rows must be a positive integer, got 0"):
        fv.iter_batch_data(batch_rows=0)
    with pytest.raises(ValidationError, match="must be before end_time"):
        fv.iter_batch_data(at(5), at(1))
    with pytest.raises(ValidationError, match="create training data first"):
        make_view(project, groups, name="fresh").iter_batch_data()


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


def test_one_online_read_per_feature_group(project, groups) -> None:
    fv = make_view(project, groups)
    fv.create_training_data()
    online = project.backends.online
    calls: list[tuple[str, int]] = []
    real_read = online.read

    def counting_read(table: str, keys: Any) -> Any:
        calls.append((table, len(keys)))
        return real_read(table, keys)

    online.read = counting_read  # type: ignore[method-assign]
    try:
        fv.get_feature_vectors([{"tid": i} for i in range(30)])
        assert sorted(calls) == sorted((g.table_name, 30) for g in groups.values())
        calls.clear()
        fv.get_feature_vector({"tid": 1})
        assert len(calls) == 3
    finally:
        del online.read


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


# --- bad input: typed errors, nothing written --------------------------------------------------


def assert_no_view(project: fti.Project) -> None:
    assert project.feature_store.list_feature_views() == []


def test_join_on_a_column_that_is_not_a_key(project, groups) -> None:
    with pytest.raises(SchemaError, match=r"cannot join 'profiles' on \['age'\].*primary key.*\['cc_num'\]"):
        groups["tx"].select(["amount"]).join(groups["profiles"].select_all(), on=["age"])
    with pytest.raises(SchemaError, match=r"not columns of the spine feature group 'profiles'"):
        groups["profiles"].select(["age"]).join(groups["windows"].select_all(), on=["cc_num"]).join(
            groups["tx"].select(["amount"]), on=["tid"]
        )
    assert_no_view(project)


def test_ambiguous_column_names_without_prefix(project, groups) -> None:
    with pytest.raises(SchemaError, match=r"ambiguous column name 'ts'.*prefix="):
        groups["tx"].select(["amount"]).join(groups["profiles"].select(["ts", "age"]), on=["cc_num"])
    left = groups["tx"].select(["amount"]).join(groups["profiles"].select(["age"]))
    with pytest.raises(SchemaError, match=r"ambiguous column name 'age'.*'profiles'"):
        left.join(groups["profiles"].select(["age"]))
    assert_no_view(project)


def test_label_not_in_the_query(project, groups) -> None:
    query = groups["tx"].select(["amount"])
    with pytest.raises(SchemaError, match=r"label\(s\) \['is_fraud'\] are not in the query"):
        project.feature_store.get_or_create_feature_view("v", query=query, labels=["is_fraud"])
    assert_no_view(project)


BAD_TRANSFORMATIONS = [
    ({"nope": "standard_scaler"}, SchemaError, "transformation on 'nope', which is not a feature"),
    ({"category": "standard_scaler"}, SchemaError, "standard_scaler needs a numeric feature.*string"),
    ({"amount": "one_hot_encoder"}, SchemaError, "one_hot_encoder needs a string.*float64"),
    ({"amount": "zscore"}, ValidationError, "unknown transformation 'zscore'"),
    ({"amount": "bucketize(3, 1)"}, ValidationError, "strictly increasing"),
    ({"amount": "no_such_module.fn"}, ValidationError, "cannot be imported"),
    ({"is_fraud": "label_encoder"}, ValidationError, "labels.*cannot be transformed"),
]


def test_bad_transformations(project, groups) -> None:
    for transformations, error, match in BAD_TRANSFORMATIONS:
        with pytest.raises(error, match=match):
            make_view(project, groups, transformations=transformations)
    assert_no_view(project)


def test_test_size_outside_0_1(project, groups) -> None:
    fv = make_view(project, groups)
    for size in (0, 1, -0.1, 1.5, "0.2", True):
        with pytest.raises(ValidationError, match=r"test_size must be a fraction in \(0, 1\)"):
            fv.train_test_split(test_size=size)
    with pytest.raises(ValidationError, match=r"validation_size \+ test_size must be < 1"):
        fv.train_validation_test_split(validation_size=0.5, test_size=0.5)
    with pytest.raises(ValidationError, match="split must be 'random' or 'time'"):
        fv.train_test_split(split="stratified")
    assert fv.training_dataset_versions() == []


def test_time_split_with_an_empty_side(project, groups) -> None:
    fv = make_view(project, groups)
    with pytest.raises(ValidationError, match="leaves the test side empty"):
        fv.train_test_split(split="time", test_start=at(1000))
    with pytest.raises(ValidationError, match="leaves the train side empty"):
        fv.train_test_split(split="time", test_start=at(0))
    with pytest.raises(ValidationError, match="test_start as a tz-aware datetime"):
        fv.train_test_split(split="time", test_start=datetime(2024, 1, 2))
    with pytest.raises(ValidationError, match="no spine rows"):
        fv.create_training_data(start_time=at(500))
    assert fv.training_dataset_versions() == []
    offline_dir = Path(project.settings.resolved_offline_url.removeprefix("file://"))
    assert not [p.name for p in offline_dir.iterdir() if "__fv_" in p.name]


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
    query = groups["tx"].select(["amount"]).join(risk.select_all())
    fv = project.feature_store.get_or_create_feature_view("offline_mix", query=query)
    assert fv.get_batch_data()["risk"].tolist()[:3] == [0.0, 1 / 7, 2 / 7]
    with pytest.raises(ValidationError, match=r"'risk' is not online-enabled, so its features \['risk'\]"):
        fv.get_feature_vector({"tid": 1})
    assert fv.get_feature_vector({"tid": 1}, passed_features={"risk": 0.25}) == [
        groups["tx"].online_lookup([{"tid": 1}])[0]["amount"],
        0.25,
    ]
