"""Queries the Hopsworks way: select_all defaults, filters with Feature objects and &/|,
query.read/show, fg.show, joins with left_on/right_on/join_type, and the documented row order."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import SchemaError, ValidationError
from tests.unit.features._data import assert_no_view, at

IRIS_KEYS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _iris(project: fti.Project, rows: int = 30, seed: int = 0) -> tuple[object, pd.DataFrame]:
    """A group whose features are all primary-key columns, as in the serverless-ml iris system."""
    fg = project.feature_store.get_or_create_feature_group("iris", primary_key=IRIS_KEYS)
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({k: rng.uniform(0.1, 8, rows).round(3) for k in IRIS_KEYS})
    df["variety"] = rng.choice(["Setosa", "Versicolor", "Virginica"], rows)
    fg.insert(df)
    return fg, df


def test_select_all_includes_keys_and_event_time_by_default(project, groups) -> None:
    tx = groups["tx"]
    assert [c.name for c in tx.select_all().columns()] == [
        "tid",
        "ts",
        "cc_num",
        "amount",
        "category",
        "is_fraud",
    ]
    assert [c.name for c in tx.select_all(include_primary_key=False).columns()] == [
        "ts", "cc_num", "amount", "category", "is_fraud",
    ]  # fmt: skip
    assert [c.name for c in tx.select_all(include_event_time=False, include_primary_key=False).columns()] == [
        "cc_num", "amount", "category", "is_fraud",
    ]  # fmt: skip
    assert [c.name for c in tx.select_except(["is_fraud"]).columns()] == [
        "tid",
        "ts",
        "cc_num",
        "amount",
        "category",
    ]
    with pytest.raises(ValidationError, match="include_primary_key must be True or False"):
        tx.select_all(include_primary_key="no")


def test_a_group_of_key_columns_only_makes_a_view_with_features(sqlite_project) -> None:
    """The iris tutorial: every feature is a key column; select_all() once made a view with zero
    features whose training data was empty without an error."""
    fg, df = _iris(sqlite_project)
    fv = sqlite_project.feature_store.get_or_create_feature_view(
        "iris", query=fg.select_all(), labels=["variety"]
    )
    x_train, x_test, y_train, _ = fv.train_test_split(0.2)
    assert list(x_train.columns) == IRIS_KEYS
    assert len(x_train) + len(x_test) == len(df) and len(x_test) == 6
    assert set(y_train) <= {"Setosa", "Versicolor", "Virginica"}


def test_a_view_or_training_dataset_without_feature_columns_is_refused(sqlite_project) -> None:
    fg, _ = _iris(sqlite_project)
    with pytest.raises(
        ValidationError, match=r"no feature columns: every selected column .*'variety'.* is a label"
    ):
        sqlite_project.feature_store.get_or_create_feature_view(
            "v", query=fg.select(["variety"]), labels=["variety"]
        )
    assert_no_view(sqlite_project)


def test_a_joined_groups_key_and_event_time_are_the_spine_rows_own(project, groups) -> None:
    """Selected through the joined group (as the fraud_batch tutorial does with select_all on the
    windowed group), the join key and event time appear once, with the spine row's values."""
    query = groups["tx"].select(["amount", "is_fraud"]).join(groups["profiles"].select_all(), on=["cc_num"])
    assert [c.name for c in query.columns()] == ["amount", "is_fraud", "cc_num", "ts", "age", "city", "score"]
    rows = query.read()
    spine = groups["tx"].read()
    merged = rows.merge(spine, on=["amount", "is_fraud"], suffixes=("", "_spine"))
    assert (merged["cc_num"] == merged["cc_num_spine"]).all() and (merged["ts"] == merged["ts_spine"]).all()
    # a prefix keeps them apart: then they are the joined group's own columns
    prefixed = groups["tx"].select(["amount"]).join(groups["profiles"].select_all(), prefix="p_")
    assert [c.name for c in prefixed.columns()][:3] == ["amount", "p_cc_num", "p_ts"]
    read = prefixed.read()
    assert (read["p_ts"] <= spine.sort_values(["ts", "tid"])["ts"].reset_index(drop=True)).all()


def test_filters_select_rows_in_reads_training_and_batch_data(project, groups) -> None:
    tx = groups["tx"]
    rows = tx.read()
    q = tx.select_all().filter((tx.amount > 50) & (tx["category"] == "food"))
    got = q.read()
    expected = rows[(rows.amount > 50) & (rows.category == "food")]
    assert sorted(got.tid) == sorted(expected.tid) and len(got)
    either = tx.filter((tx.category == "travel") | (tx.get_feature("tid").isin([0, 1, 2]))).read()
    assert sorted(either.tid) == sorted(rows[(rows.category == "travel") | rows.tid.isin([0, 1, 2])].tid)
    assert sorted(tx.filter(tx.category.like("tr%")).read().tid) == sorted(
        rows[rows.category == "travel"].tid
    )
    assert sorted(tx.filter(tx.ts >= at(30)).read().tid) == sorted(rows[rows.ts >= at(30)].tid)
    assert tx.filter(tx.tid.isin([])).read().empty
    # stored with a view: training data and batch data see the same rows
    fv = project.feature_store.get_or_create_feature_view(
        "big", query=q.join(groups["profiles"].select(["age"])), labels=["is_fraud"]
    )
    x = fv.train_test_split(0.25)[0]
    assert len(x) + len(fv.get_training_data(1, split="test")[0]) == len(expected)
    batch = fv.get_batch_data(with_keys=True)
    assert sorted(batch.tid) == sorted(expected.tid)
    again = project.feature_store.get_feature_view("big")  # the filter comes back from the catalog
    assert sorted(again.get_batch_data(with_keys=True).tid) == sorted(expected.tid)
    # a filter on a joined group reads its point-in-time value
    joined = tx.select(["amount"]).join(groups["profiles"].select(["age"]))
    by_age = joined.filter(groups["profiles"].age > 50).read()
    assert (by_age.age > 50).all() and len(by_age) == (joined.read().age > 50).sum()


def test_bad_filters_say_what_is_wrong(project, groups) -> None:
    tx, profiles = groups["tx"], groups["profiles"]
    with pytest.raises(ValidationError, match="cannot compare float64 column 'amount' with 'x'"):
        tx.amount > "x"  # noqa: B015
    with pytest.raises(ValidationError, match="no time zone"):
        tx.ts > at(1).replace(tzinfo=None)  # noqa: B015
    with pytest.raises(ValidationError, match=r"combine filters with & and \|"):
        tx.filter((tx.amount > 1) and (tx.amount < 5))
    with pytest.raises(ValidationError, match="has no truth value"):
        tx.filter(1 < tx.amount < 5)
    with pytest.raises(
        ValidationError, match=r"reads 'age' of feature group 'profiles' .* not part of this query"
    ):
        tx.select_all().filter(profiles.age > 3)
    with pytest.raises(ValidationError, match=r"filter\(\) takes a condition"):
        tx.select_all().filter("amount > 3")
    with pytest.raises(ValidationError, match=r"like\(\) needs a string column"):
        tx.amount.like("1%")
    with pytest.raises(SchemaError, match="no feature 'nope'"):
        tx.get_feature("nope")
    with pytest.raises(AttributeError, match=r"no attribute or feature 'nope'.*features are"):
        tx.nope  # noqa: B018


def test_read_and_show(project, groups) -> None:
    tx = groups["tx"]
    query = tx.select(["tid", "amount"]).join(groups["windows"].select(["spend"]))
    frame = query.read()
    assert list(frame.columns) == ["tid", "amount", "spend"] and len(frame) == 40
    assert frame.tid.tolist() == sorted(frame.tid)  # spine event time, then key
    assert query.show(3).equals(frame.head(3))
    assert query.read(dataframe_type="python")[0] == frame.iloc[0].tolist()
    assert query.read(dataframe_type="numpy").shape == (40, 3)
    assert query.read(start_time=at(20), end_time=at(25)).tid.tolist() == [10, 11, 12, 13, 14]
    assert tx.show(5).equals(tx.read().head(5))
    assert tx.read(dataframe_type="pyarrow").num_rows == 40
    with pytest.raises(ValidationError, match=r"query.read\(online=True\) is not supported"):
        query.read(online=True)
    with pytest.raises(ValidationError, match=r"fg.read\(online=True\) is not supported.*online_lookup"):
        tx.read(online=True)
    with pytest.raises(ValidationError, match="dataframe_type must be one of"):
        tx.read(dataframe_type="spark")


def test_join_left_on_right_on_and_inner(project, groups) -> None:
    fs = project.feature_store
    cards = fs.get_or_create_feature_group("cards", primary_key=["card"])
    cards.insert(pd.DataFrame({"card": [0, 1, 2], "limit": [10.0, 20.0, 30.0]}))
    tx = groups["tx"]
    left = (
        tx.select(["tid", "cc_num"])
        .join(cards.select(["limit"]), left_on=["cc_num"], right_on=["card"])
        .read()
    )
    assert len(left) == 40
    assert dict(left.dropna().groupby("cc_num")["limit"].first()) == {0: 10.0, 1: 20.0, 2: 30.0}
    assert left["limit"].isna().sum() == (~left.cc_num.isin([0, 1, 2])).sum()
    inner = tx.select(["tid", "cc_num"]).join(
        cards.select(["limit"]), left_on="cc_num", right_on="card", join_type="INNER"
    )
    assert sorted(inner.read().tid) == sorted(left[left.cc_num.isin([0, 1, 2])].tid)
    fv = fs.get_or_create_feature_view("inner", query=inner)
    assert fv.query.parts[1].join_type == "inner" and fv.query.parts[1].spine_on == ("cc_num",)
    assert len(fs.get_feature_view("inner").get_batch_data()) == len(inner.read())
    with pytest.raises(
        ValidationError, match=r"join_type must be 'left' or 'inner'.*make the other group the spine"
    ):
        tx.select(["tid"]).join(
            cards.select(["limit"]), left_on=["cc_num"], right_on=["card"], join_type="outer"
        )
    with pytest.raises(ValidationError, match="either on= or left_on=/right_on="):
        tx.select(["tid"]).join(cards.select(["limit"]), on=["card"], left_on=["cc_num"], right_on=["card"])
    with pytest.raises(SchemaError, match=r"cannot join 'cards' on \['limit'\]"):
        tx.select(["tid"]).join(cards.select(["limit"]), left_on=["amount"], right_on=["limit"])
    with pytest.raises(SchemaError, match="'amount' = 'card' is float64 in 'transactions' but int64"):
        tx.select(["tid"]).join(cards.select(["limit"]), left_on=["amount"], right_on=["card"])


def test_rows_of_a_spine_without_event_time_come_in_written_order(sqlite_project) -> None:
    """The iris batch pipeline reads the newest flower with ``iloc[-1]``: the last row of batch
    data and of fg.read() is the one written last, whatever its key, also after an upsert."""
    fg, df = _iris(sqlite_project, rows=20)
    fv = sqlite_project.feature_store.get_or_create_feature_view(
        "iris", query=fg.select_all(), labels=["variety"]
    )
    fv.create_training_data()
    for seed in range(3):
        flower = {
            k: [float(v)]
            for k, v in zip(IRIS_KEYS, np.random.default_rng(100 + seed).uniform(0, 9, 4), strict=True)
        }
        fg.insert(pd.DataFrame({**flower, "variety": ["Setosa"]}))
        newest = [flower[k][0] for k in IRIS_KEYS]
        assert fv.get_batch_data().iloc[-1].tolist() == newest
        assert fg.read().iloc[-1][IRIS_KEYS].tolist() == newest
        assert fv.query.read().iloc[-1][IRIS_KEYS].tolist() == newest
    first = df.iloc[[0]].assign(variety="Virginica")  # an upsert rewrites the file holding the row:
    fg.insert(first)  # its rows, in their order, move behind the newer ones
    after = fg.read()
    assert after[IRIS_KEYS].iloc[-len(df) :].to_numpy().tolist() == df[IRIS_KEYS].to_numpy().tolist()
    assert after.variety.iloc[-len(df)] == "Virginica" and after.iloc[-1].tolist() == df.iloc[-1].tolist()
    # with an event time: by time, then key, however the rows were written
    ev = sqlite_project.feature_store.get_or_create_feature_group("ev", primary_key=["k"], event_time="ts")
    ev.insert(pd.DataFrame({"k": [3, 1], "ts": [at(5), at(1)], "x": [1.0, 2.0]}))
    ev.insert(pd.DataFrame({"k": [2, 0], "ts": [at(3), at(3)], "x": [3.0, 4.0]}))
    view = sqlite_project.feature_store.get_or_create_feature_view("ev", query=ev.select(["x"]))
    view.create_training_data()
    assert view.get_batch_data(with_keys=True).k.tolist() == [1, 0, 2, 3]


def test_max_age_and_filters_on_a_prefixed_join(project, groups) -> None:
    query = (
        groups["tx"]
        .select(["tid", "amount"])
        .join(groups["profiles"].select(["age"]), prefix="p_", max_age=timedelta(hours=8))
        .filter(groups["tx"].tid < 10)
    )
    frame = query.read()
    assert frame.tid.tolist() == list(range(10))
    # the profiles of hour 5 are 5 to 14 hours old at the transactions of hours 10 to 19
    assert frame.p_age.notna().tolist() == [True] * 4 + [False] * 6
