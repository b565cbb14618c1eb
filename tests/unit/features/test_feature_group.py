"""Feature groups end to end on real Delta tables and a real catalog (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti.errors import AlreadyExistsError, NotFoundError, SchemaError, ValidationError

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(keys: list[int], hours: list[int], amounts: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cc_num": keys,
            "ts": [T0 + timedelta(hours=h) for h in hours],
            "amount": amounts,
            "category": [f"c{k}" for k in keys],
        }
    )


@pytest.fixture
def transactions(project: fti.Project) -> fti.features.feature_group.FeatureGroup:  # type: ignore[name-defined]
    return project.feature_store.get_or_create_feature_group(
        "transactions", version=1, primary_key=["cc_num"], event_time="ts", online_enabled=True
    )


def test_insert_read_and_time_travel(transactions) -> None:
    first = transactions.insert(frame([1, 2], [0, 1], [10.0, 20.0]))
    second = transactions.insert(frame([1, 3], [5, 6], [11.0, 30.0]))
    assert (first.version, first.rows) == (0, 2)
    assert (second.version, second.rows) == (1, 2)
    latest = transactions.read().sort_values(["cc_num", "ts"])
    assert latest["amount"].tolist() == [10.0, 11.0, 20.0, 30.0]
    assert transactions.read(as_of=0)["amount"].sort_values().tolist() == [10.0, 20.0]
    assert transactions.read(columns=["amount"]).columns.tolist() == ["amount"]
    assert transactions.read_arrow().num_rows == 4
    assert transactions.read_polars().height == 4
    assert str(transactions.read()["ts"].dtype) == "datetime64[us, UTC]"
    history = transactions.commits()
    assert [c.version for c in history] == [0, 1]
    assert [c.rows_inserted for c in history] == [2, 2]


def test_time_travel_by_timestamp(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    between = datetime.now(UTC)
    transactions.insert(frame([2], [0], [2.0]))
    assert transactions.read(as_of=between)["cc_num"].tolist() == [1]


def test_reinserting_same_key_and_time_updates_the_row(transactions) -> None:
    transactions.insert(frame([1, 2], [0, 0], [1.0, 2.0]))
    transactions.insert(frame([1], [0], [5.0]))
    data = transactions.read().sort_values("cc_num")
    assert data["amount"].tolist() == [5.0, 2.0]
    assert transactions.online_lookup([{"cc_num": 1}])[0]["amount"] == 5.0


def test_online_lookup_latest_row_in_request_order(transactions) -> None:
    transactions.insert(frame([1, 1, 2], [0, 3, 1], [1.0, 3.0, 2.0]))
    rows = transactions.online_lookup([{"cc_num": 2}, {"cc_num": 99}, {"cc_num": 1}])
    assert rows[1] is None
    assert rows[0]["amount"] == 2.0 and rows[2]["amount"] == 3.0
    assert rows[2]["ts"] == T0 + timedelta(hours=3)


def test_older_event_never_overwrites_newer_online(transactions) -> None:
    transactions.insert(frame([1], [10], [10.0]))
    transactions.insert(frame([1], [2], [2.0]))  # arrives late
    assert transactions.online_lookup([{"cc_num": 1}])[0]["amount"] == 10.0


def test_polars_and_arrow_inputs(transactions) -> None:
    import polars as pl

    transactions.insert(pl.from_pandas(frame([1], [0], [1.0])))
    transactions.insert(pa.Table.from_pandas(frame([2], [0], [2.0]), preserve_index=False))
    assert sorted(transactions.read()["cc_num"].tolist()) == [1, 2]


def test_statistics_per_commit(transactions) -> None:
    transactions.insert(frame([1, 2, 3, 4], [0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0]))
    transactions.insert(frame([5], [4], [100.0]))
    first = transactions.statistics(version=0)["amount"]
    assert first["count"] == 4 and first["nulls"] == 0
    assert first["mean"] == pytest.approx(2.5) and first["min"] == 1.0 and first["max"] == 4.0
    assert first["std"] == pytest.approx(pd.Series([1.0, 2.0, 3.0, 4.0]).std())
    assert sum(first["histogram"]["counts"]) == 4
    assert transactions.statistics()["amount"]["max"] == 100.0
    assert transactions.statistics()["category"]["approx_distinct"] == 5


def test_get_latest_version_and_list(project: fti.Project) -> None:
    fs = project.feature_store
    fs.get_or_create_feature_group("profiles", version=1, primary_key=["id"])
    fs.get_or_create_feature_group("profiles", version=2, primary_key=["id"])
    assert fs.get_feature_group("profiles").version == 2
    assert fs.get_feature_group("profiles", version=1).version == 1
    assert [(g.name, g.version) for g in fs.list_feature_groups()] == [("profiles", 1), ("profiles", 2)]


def test_get_or_create_is_idempotent_but_refuses_a_changed_definition(project: fti.Project) -> None:
    fs = project.feature_store
    a = fs.get_or_create_feature_group("g", primary_key=["id"])
    b = fs.get_or_create_feature_group("g", primary_key=["id"])
    assert a.id == b.id
    with pytest.raises(AlreadyExistsError, match="primary_key"):
        fs.get_or_create_feature_group("g", primary_key=["other"])


def test_append_features(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    transactions.append_features([fti.Feature("flag", "bool")])
    assert transactions.read()["flag"].isna().all()
    transactions.insert(frame([2], [1], [2.0]).assign(flag=[True]))
    assert transactions.online_lookup([{"cc_num": 2}])[0]["flag"] is True
    with pytest.raises(SchemaError, match="missing column"):
        transactions.insert(frame([3], [2], [3.0]))


def test_delete_removes_everything(project: fti.Project, transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    transactions.delete()
    with pytest.raises(NotFoundError):
        project.feature_store.get_feature_group("transactions")
    assert project.backends.offline.version(transactions.table_name) is None
    assert project.backends.online.read(transactions.table_name, [(1,)]) == [None]


def test_materialize_catches_up_after_a_lost_online_write(transactions, project: fti.Project) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    # Simulate a crash between the offline commit and the online write.
    project.backends.offline.write(
        transactions.table_name,
        pa.Table.from_pandas(frame([1], [5], [50.0]), preserve_index=False),
        merge_keys=["cc_num", "ts"],
    )
    assert transactions.online_lookup([{"cc_num": 1}])[0]["amount"] == 1.0
    assert transactions.materialize() == 1
    assert transactions.online_lookup([{"cc_num": 1}])[0]["amount"] == 50.0
    assert transactions.materialize() == 0


def test_connect_catches_up_online_store(home, catalog_url) -> None:
    project = fti.connect(home=home, catalog_url=catalog_url)
    fg = project.feature_store.get_or_create_feature_group(
        "t", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    fg.insert(frame([1], [0], [1.0]))
    project.backends.offline.write(
        fg.table_name,
        pa.Table.from_pandas(frame([2], [0], [2.0]), preserve_index=False),
        merge_keys=["cc_num"],
    )
    project.close()
    again = fti.connect(home=home, catalog_url=catalog_url)
    fg = again.feature_store.get_feature_group("t")
    assert fg.online_lookup([{"cc_num": 2}])[0]["amount"] == 2.0
    again.close()


# --- bad input: each raises a typed error and writes nothing ---------------------------------


def assert_nothing_written(fg) -> None:
    assert fg.commits() == []
    assert fg.project.backends.offline.version(fg.table_name) is None


def test_unknown_project_and_group(home, catalog_url) -> None:
    with pytest.raises(NotFoundError, match="project 'nope' does not exist"):
        fti.connect(home=home, project="nope", create=False, catalog_url=catalog_url)
    project = fti.connect(home=home, catalog_url=catalog_url)
    with pytest.raises(NotFoundError, match="feature group 'missing' not found"):
        project.feature_store.get_feature_group("missing")
    project.close()


@pytest.mark.parametrize("name", ["Bad", "has-dash", "", "x" * 64, "spa ce", 3])
def test_invalid_names(project: fti.Project, name) -> None:
    with pytest.raises(ValidationError, match="invalid feature group name"):
        project.feature_store.get_or_create_feature_group(name, primary_key=["id"])


def test_invalid_project_name(home) -> None:
    with pytest.raises(ValidationError, match="invalid project name"):
        fti.connect(home=home, project="Has Caps")


@pytest.mark.parametrize("version", [0, -1, "1", 1.5, True])
def test_invalid_version(project: fti.Project, version) -> None:
    with pytest.raises(ValidationError, match="versions are integers >= 1"):
        project.feature_store.get_or_create_feature_group("g", version=version, primary_key=["id"])


def test_missing_primary_key_column(transactions) -> None:
    with pytest.raises(SchemaError, match=r"primary key column\(s\) \['cc_num'\] missing"):
        transactions.insert(frame([1], [0], [1.0]).drop(columns=["cc_num"]))
    assert_nothing_written(transactions)


def test_null_keys(transactions) -> None:
    df = frame([1, 2], [0, 1], [1.0, 2.0]).astype({"cc_num": "Int64"})
    df.loc[1, "cc_num"] = None
    with pytest.raises(
        ValidationError, match=r"primary key column 'cc_num' has 1 null value\(s\) \(rows \[1\]\)"
    ):
        transactions.insert(df)
    assert_nothing_written(transactions)


def test_naive_timestamps(transactions) -> None:
    df = frame([1], [0], [1.0])
    df["ts"] = df["ts"].dt.tz_localize(None)
    with pytest.raises(SchemaError, match=r"naive timestamps.*tz_localize"):
        transactions.insert(df)
    assert_nothing_written(transactions)


def test_wrong_dtypes_name_each_column(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    bad = frame([2], [1], [2.0]).assign(amount=["two"], category=[5])
    with pytest.raises(SchemaError) as info:
        transactions.insert(bad)
    assert "'amount' has type string, expected float64" in str(info.value)
    assert "'category' has type int64, expected string" in str(info.value)
    assert len(transactions.commits()) == 1


def test_extra_and_missing_columns(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    with pytest.raises(SchemaError, match=r"unexpected column\(s\) \['extra'\].*append_features"):
        transactions.insert(frame([2], [0], [1.0]).assign(extra=1))
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['category'\]"):
        transactions.insert(frame([2], [0], [1.0]).drop(columns=["category"]))


def test_int_widening_is_accepted(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    transactions.insert(frame([2], [1], [2.0]).astype({"cc_num": "int32", "amount": "int64"}))
    assert transactions.read()["amount"].sum() == 3.0


def test_empty_dataframe(transactions) -> None:
    with pytest.raises(ValidationError, match="empty dataframe"):
        transactions.insert(frame([], [], []))
    assert_nothing_written(transactions)


@pytest.mark.parametrize("data", [[{"cc_num": 1}], {"cc_num": [1]}, "cc_num", None])
def test_non_dataframe_argument(transactions, data) -> None:
    with pytest.raises(
        ValidationError, match="must be a pandas DataFrame, polars DataFrame or pyarrow Table"
    ):
        transactions.insert(data)
    assert_nothing_written(transactions)


def test_duplicate_keys_in_one_insert(transactions) -> None:
    with pytest.raises(
        ValidationError, match=r"1 duplicate \(primary key, event time\) value\(s\).*'cc_num': 1"
    ):
        transactions.insert(frame([1, 1, 2], [0, 0, 1], [1.0, 2.0, 3.0]))
    assert_nothing_written(transactions)


def test_duplicate_keys_in_a_large_insert(transactions, monkeypatch) -> None:
    """Above ARROW_UNIQUE_MAX_ROWS the check runs in DuckDB: same verdict, same message."""
    from fti.features import ingestion

    monkeypatch.setattr(ingestion, "ARROW_UNIQUE_MAX_ROWS", 4)
    n = 10
    keys = [*range(n), 7, 3]
    hours = [*range(n), 7, 3]
    with pytest.raises(
        ValidationError,
        match=r"2 duplicate \(primary key, event time\) value\(s\).*'cc_num': 3.*'cc_num': 7",
    ):
        transactions.insert(frame(keys, hours, [1.0] * len(keys)))
    assert_nothing_written(transactions)
    assert transactions.insert(frame(list(range(n)), list(range(n)), [1.0] * n)).rows == n


def test_online_lookup_missing_key_column(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    with pytest.raises(ValidationError, match=r"missing primary-key column\(s\) \['cc_num'\]"):
        transactions.online_lookup([{"card": 1}])
    with pytest.raises(ValidationError, match="list of mappings"):
        transactions.online_lookup({"cc_num": 1})


def test_online_lookup_on_offline_only_group(project: fti.Project) -> None:
    fg = project.feature_store.get_or_create_feature_group("off", primary_key=["id"])
    with pytest.raises(ValidationError, match="not online-enabled"):
        fg.online_lookup([{"id": 1}])


def test_declared_schema_is_enforced_from_the_first_insert(project: fti.Project) -> None:
    fg = project.feature_store.get_or_create_feature_group(
        "declared",
        primary_key=["id"],
        features=[fti.Feature("id", "int64"), fti.Feature("x", "float64")],
    )
    with pytest.raises(SchemaError, match="'x' has type string, expected float64"):
        fg.insert(pd.DataFrame({"id": [1], "x": ["a"]}))
    fg.insert(pd.DataFrame({"id": [1], "x": [0.5]}))
    assert fg.read()["x"].tolist() == [0.5]
    with pytest.raises(ValidationError, match="unknown dtype"):
        fti.Feature("y", "float")


def test_append_mode_skips_the_merge_and_statistics_can_be_deferred(transactions) -> None:
    transactions.insert(frame([1], [0], [1.0]))
    result = transactions.insert(frame([2, 3], [1, 2], [2.0, 3.0]), write_mode="append", statistics=False)
    assert result.rows == 2
    assert sorted(transactions.read()["cc_num"].tolist()) == [1, 2, 3]
    assert transactions.online_lookup([{"cc_num": 3}])[0]["amount"] == 3.0
    # not stored at that commit, computed on demand from the table at that version
    assert transactions.statistics(version=result.version)["amount"]["count"] == 3
    with pytest.raises(ValidationError, match="write_mode must be"):
        transactions.insert(frame([4], [3], [4.0]), write_mode="overwrite")


def test_read_page_reads_a_window_of_rows_at_any_commit(sqlite_project: fti.Project) -> None:
    fg = sqlite_project.feature_store.get_or_create_feature_group("paged", primary_key=["id"])
    assert (fg.read_page().items, fg.read_page().total) == ([], 0)  # no commit yet
    first = fg.insert(pd.DataFrame({"id": range(5), "x": [float(i) for i in range(5)]}))
    fg.insert(pd.DataFrame({"id": range(5, 12), "x": [float(i) for i in range(5, 12)]}), write_mode="append")
    whole = fg.read().to_dict("records")
    page = fg.read_page(offset=3, limit=4)
    assert (page.total, page.has_next) == (12, True)
    assert page.items == whole[3:7]
    assert fg.read_page(offset=10, limit=5).items == whole[10:]
    old = fg.read_page(limit=50, as_of=first.version)
    assert old.total == 5 and [r["id"] for r in old] == [0, 1, 2, 3, 4]
    with pytest.raises(ValidationError, match="limit must be an integer from 0 to 1000"):
        fg.read_page(limit=10_000)
