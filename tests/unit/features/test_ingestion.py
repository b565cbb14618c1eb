"""The checks of an insert (fti.features.ingestion): each bad input raises a typed error and
writes nothing."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

import fti
from fti.errors import SchemaError, ValidationError
from tests.unit.features._data import assert_nothing_written, frame


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
        transactions.insert(frame(keys, hours, [1.0] * n + [2.0, 2.0]))
    assert_nothing_written(transactions)
    assert transactions.insert(frame(list(range(n)), list(range(n)), [1.0] * n)).rows == n


@pytest.mark.parametrize("arrow_max_rows", [500_000, 2])
def test_rows_repeated_whole_are_stored_once(transactions, monkeypatch, caplog, arrow_max_rows) -> None:
    """As Hopsworks' upsert combines them (the iris tutorial's CSV repeats a flower): kept once,
    in order, with a note; a key repeated with other values stays an error."""
    from fti.features import ingestion

    monkeypatch.setattr(ingestion, "ARROW_UNIQUE_MAX_ROWS", arrow_max_rows)
    result = transactions.insert(frame([1, 2, 1, 3, 2], [0, 1, 0, 2, 1], [1.0, 2.0, 1.0, 3.0, 2.0]))
    assert result.rows == 3
    assert transactions.read().sort_values("cc_num")["amount"].tolist() == [1.0, 2.0, 3.0]
    assert (
        "2 row(s) of the data for feature group 'transactions' repeat an earlier row exactly" in caplog.text
    )
    with pytest.raises(ValidationError, match="with different values"):
        transactions.insert(frame([4, 4, 4], [5, 5, 5], [1.0, 1.0, 9.0]))


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


# --- issue 19: hardening ----------------------------------------------------------------------
def test_nan_in_a_float_primary_key_is_rejected_before_any_write(project: fti.Project) -> None:
    fg = project.feature_store.get_or_create_feature_group(
        "scores", primary_key=["score"], event_time="ts", online_enabled=True
    )
    import pyarrow as pa

    # Arrow (and polars) keep NaN apart from null; pandas would turn it into a null
    df = pa.table({"score": [0.5, float("nan")], "ts": frame([1, 2], [0, 1], [1, 2])["ts"]})
    assert df.column("score").null_count == 0
    with pytest.raises(
        ValidationError, match=r"primary key column 'score' has 1 NaN value\(s\) \(rows \[1\]\)"
    ):
        fg.insert(df)
    assert_nothing_written(fg)
    assert fg.features is None


def test_a_nan_key_already_in_the_offline_table_does_not_break_connect_or_inserts(home, catalog_url) -> None:
    """Data committed before NaN keys were rejected: the online store skips the row (a NaN key
    can never be looked up), so neither catching the group up nor later inserts fail."""
    import pyarrow as pa

    project = fti.connect(home=home, catalog_url=catalog_url)
    fg = project.feature_store.get_or_create_feature_group(
        "scores", primary_key=["score"], event_time="ts", online_enabled=True
    )
    fg.insert(pd.DataFrame({"score": [0.5], "ts": frame([1], [0], [1])["ts"], "v": [1]}))
    corrupt = pa.table(
        {"score": [float("nan"), 0.75], "ts": frame([1, 2], [1, 1], [1, 2])["ts"], "v": [2, 3]}
    )
    project.backends.offline.write(fg.table_name, corrupt)
    project.close()
    with fti.connect(home=home, catalog_url=catalog_url) as again:
        assert again.feature_store.materialize_all() == 2  # the NaN row is skipped
        fg = again.feature_store.get_feature_group("scores")
        assert fg.online_lookup([{"score": 0.75}])[0]["v"] == 3
        fg.insert(pd.DataFrame({"score": [0.25], "ts": frame([1], [2], [1])["ts"], "v": [4]}))
        assert fg.online_lookup([{"score": 0.25}, {"score": 0.5}]) == [
            {"score": 0.25, "ts": frame([1], [2], [1])["ts"][0].to_pydatetime(), "v": 4},
            {"score": 0.5, "ts": frame([1], [0], [1])["ts"][0].to_pydatetime(), "v": 1},
        ]


@pytest.mark.parametrize("columns", [["A", "a"], ["id", "Id"]])
def test_columns_differing_only_in_case_fail_without_fixing_the_schema(project: fti.Project, columns) -> None:
    fg = project.feature_store.get_or_create_feature_group("cased", primary_key=["cc_num"])
    bad = pd.DataFrame({"cc_num": [1], columns[0]: [1.0], columns[1]: [2.0]})
    with pytest.raises(SchemaError, match=f"{columns[0]!r} and {columns[1]!r} differ only in case"):
        fg.insert(bad)
    assert fg.features is None
    assert project.feature_store.get_feature_group("cased").features is None
    good = fg.insert(pd.DataFrame({"cc_num": [1], "x": [2.0]}))
    assert good.version == 0 and [f.name for f in fg.features or []] == ["cc_num", "x"]


def test_a_first_insert_that_fails_in_the_offline_store_does_not_fix_the_schema(
    home, catalog_url, s3_server, monkeypatch
) -> None:
    """The first insert's Delta write fails (the S3 bucket does not exist yet): nothing is
    committed and the group has no schema, so the next insert may bring other columns."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"later-{uuid.uuid4().hex[:12]}"
    with fti.connect(home=home, catalog_url=catalog_url, offline_url=f"s3://{bucket}/offline") as project:
        fg = project.feature_store.get_or_create_feature_group("remote", primary_key=["cc_num"])
        with pytest.raises(fti.BackendError):
            fg.insert(pd.DataFrame({"cc_num": [1], "old": [1.0]}))
        assert fg.features is None and fg.commits() == []
        assert project.feature_store.get_feature_group("remote").features is None
        s3_server.create_bucket(bucket)
        assert fg.insert(pd.DataFrame({"cc_num": [1], "new": ["x"]})).version == 0
        assert [f.name for f in fg.features or []] == ["cc_num", "new"]


def test_nanosecond_timestamps_are_stored_when_exact_and_explained_when_not(project: fti.Project) -> None:
    import pyarrow as pa

    fg = project.feature_store.get_or_create_feature_group("nanos", primary_key=["cc_num"], event_time="ts")
    exact = pa.table(
        {"cc_num": [1], "ts": pa.array([1_700_000_000_000_001_000], pa.timestamp("ns", tz="UTC"))}
    )
    assert fg.insert(exact).rows == 1  # whole microseconds: converted without loss
    assert fg.read_arrow().column("ts").type == pa.timestamp("us", tz="UTC")
    lossy = pa.table(
        {"cc_num": [2], "ts": pa.array([1_700_000_000_000_001_234], pa.timestamp("ns", tz="UTC"))}
    )
    message = r"column 'ts' has timestamps with nanoseconds \(e\.g\. row 0: 2023-11-14 22:13:20\.000001234"
    with pytest.raises(SchemaError, match=message + r".*microseconds.*dt\.floor\('us'\)"):
        fg.insert(lossy)
    new = project.feature_store.get_or_create_feature_group(
        "nanos_new", primary_key=["cc_num"], event_time="ts"
    )
    with pytest.raises(SchemaError, match=message):
        new.insert(lossy)  # a first insert explains it the same way
    assert_nothing_written(new)


def test_unsigned_64_bit_values_beyond_int64_are_explained(project: fti.Project) -> None:
    import pyarrow as pa

    fg = project.feature_store.get_or_create_feature_group("unsigned", primary_key=["cc_num"])
    fg.insert(pa.table({"cc_num": [1], "n": pa.array([5], pa.int64())}))
    assert fg.insert(pa.table({"cc_num": [2], "n": pa.array([7], pa.uint64())})).rows == 1
    big = pa.table({"cc_num": [3], "n": pa.array([2**63 + 1], pa.uint64())})
    with pytest.raises(
        SchemaError, match=r"column 'n' holds 9223372036854775809 \(row 0\), beyond the int64 range"
    ):
        fg.insert(big)
    new = project.feature_store.get_or_create_feature_group("unsigned_new", primary_key=["cc_num"])
    with pytest.raises(
        SchemaError, match=r"column 'n' holds 9223372036854775809 \(row 0\), beyond the int64 range"
    ):
        new.insert(big)
    assert_nothing_written(new)


@pytest.mark.parametrize("name", ["__fti_split", "__fti_row", "__fti_spine_rank"])
def test_reserved_column_names_are_rejected_at_insert_and_declaration(project: fti.Project, name) -> None:
    fs = project.feature_store
    fg = fs.get_or_create_feature_group("reserved", primary_key=["cc_num"])
    with pytest.raises(SchemaError, match=f"column name {name!r} is reserved.*__fti_"):
        fg.insert(pd.DataFrame({"cc_num": [1], name: [1.0]}))
    assert_nothing_written(fg)
    with pytest.raises(ValidationError, match=f"{name!r} is reserved"):
        fs.get_or_create_feature_group(
            "declared", primary_key=["cc_num"], features=[fti.Feature(name, "float64")]
        )
