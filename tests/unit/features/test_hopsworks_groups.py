"""Feature groups the Hopsworks way: create_* (error if it exists), get_feature_groups,
project.get_feature_store(), feature descriptions, delete_records, Hopsworks insert arguments,
epoch-millisecond event times and upper-case column names."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from fti.errors import AlreadyExistsError, SchemaError, ValidationError
from tests.unit.features._data import assert_nothing_written, at, frame


def test_create_is_an_error_when_it_exists_and_get_feature_groups_lists_versions(project) -> None:
    fs = project.get_feature_store()
    assert fs is project.feature_store and project.get_model_registry() is project.model_registry
    created = fs.create_feature_group("tx", primary_key=["cc_num"], event_time="ts", description="d")
    assert created.version == 1 and created.description == "d"
    with pytest.raises(
        AlreadyExistsError, match=r"'tx' version 1 already exists; .*get_feature_group\('tx', 1\).*version 2"
    ):
        fs.create_feature_group("tx", version=1, primary_key=["cc_num"])
    fs.create_feature_group("tx", version=2, primary_key=["cc_num"])
    # no version: the one after the newest, as in Hopsworks
    assert fs.create_feature_group("tx", primary_key=["cc_num"]).version == 3
    assert [g.version for g in fs.get_feature_groups("tx")] == [1, 2, 3]
    assert fs.get_feature_groups("other") == []
    created.insert(frame([1, 2], [1, 2], [3.0, 4.0]))
    view = fs.create_feature_view("v", query=created.select(["amount"]))
    with pytest.raises(AlreadyExistsError, match="feature view 'v' version 1 already exists"):
        fs.create_feature_view("v", version=1, query=created.select(["amount"]))
    assert fs.create_feature_view("v", query=created.select(["amount"])).version == 2
    assert [v.version for v in fs.get_feature_views("v")] == [view.version, 2] == [1, 2]
    with pytest.raises(ValidationError, match="one feature store"):
        project.get_feature_store("elsewhere")


def test_feature_descriptions_are_stored(project) -> None:
    fg = project.feature_store.get_or_create_feature_group("tx", primary_key=["cc_num"], event_time="ts")
    with pytest.raises(SchemaError, match="no schema yet"):
        fg.update_feature_description("amount", "x")
    fg.insert(frame([1], [1], [3.0]))
    assert fg.update_feature_description("amount", "Dollar amount") is fg
    again = project.feature_store.get_feature_group("tx")
    assert {f.name: f.description for f in again.features} == {
        "cc_num": "", "ts": "", "amount": "Dollar amount", "category": "",
    }  # fmt: skip
    with pytest.raises(SchemaError, match="no feature 'nope'"):
        fg.update_feature_description("nope", "x")
    fg.insert(frame([2], [2], [5.0]))  # later inserts keep the descriptions
    assert project.feature_store.get_feature_group("tx").features[2].description == "Dollar amount"


def test_delete_records_removes_rows_offline_and_online(project) -> None:
    fg = project.feature_store.get_or_create_feature_group(
        "tx", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    fg.insert(frame([1, 2, 3, 1], [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0]))
    assert fg.online_lookup([{"cc_num": 1}])[0]["amount"] == 4.0
    # a key and event time: only that row; the online row falls back to the key's previous one
    assert fg.delete_records(pd.DataFrame({"cc_num": [1], "ts": [at(4)]})) == 1
    assert fg.online_lookup([{"cc_num": 1}])[0]["amount"] == 1.0
    # keys only: every row of the key; other columns are ignored (the rows read can be passed back)
    rows = fg.read()
    assert fg.delete_records(rows[rows.cc_num == 2].drop(columns=["ts"])) == 1
    assert fg.delete_records([{"cc_num": 3}, {"cc_num": 3}, {"cc_num": 99}]) == 1
    assert sorted(fg.read().cc_num) == [1]
    assert fg.online_lookup([{"cc_num": 2}, {"cc_num": 3}, {"cc_num": 1}]) == [
        None, None, {"cc_num": 1, "ts": at(1), "amount": 1.0, "category": "c1"},
    ]  # fmt: skip
    assert [c.operation for c in fg.commits()][-3:] == ["delete_records"] * 3
    assert [c.rows_inserted for c in fg.commits()][-3:] == [1, 1, 1]
    assert fg.read(as_of=0).shape[0] == 4  # time travel still sees them
    for bad, error, message in [
        (pd.DataFrame({"amount": [1.0]}), SchemaError, r"lack primary-key column\(s\) \['cc_num'\]"),
        (pd.DataFrame({"cc_num": ["x"]}), SchemaError, "cc_num"),
        (pd.DataFrame({"cc_num": [None, 1]}), ValidationError, "null"),
        (pd.DataFrame({"cc_num": []}), ValidationError, "no keys to delete"),
    ]:
        with pytest.raises(error, match=message):
            fg.delete_records(bad)
    assert len(fg.commits()) == 4


def test_a_delete_interrupted_before_the_online_store_is_caught_up(sqlite_project) -> None:
    fg = sqlite_project.feature_store.get_or_create_feature_group(
        "tx", primary_key=["cc_num"], online_enabled=True
    )
    fg.insert(pd.DataFrame({"cc_num": [1, 2], "x": [1.0, 2.0]}))
    offline = sqlite_project.backends.offline
    keys = fg._delete_keys([{"cc_num": 1}])
    offline.delete_rows(fg.table_name, keys, metadata={"operation": "delete_records"})  # then a crash
    assert fg.online_lookup([{"cc_num": 1}])[0] is not None
    assert fg.materialize() == 1  # the catch-up sees the delete and rebuilds
    assert fg.online_lookup([{"cc_num": 1}, {"cc_num": 2}])[0] is None
    assert [c.operation for c in fg.commits()] == ["insert", "delete_records"]


def test_hopsworks_insert_arguments(sqlite_project) -> None:
    import pandera.pandas as pa

    suite = pa.DataFrameSchema({"amount": pa.Column(float, pa.Check.ge(0))})
    fg = sqlite_project.feature_store.get_or_create_feature_group(
        "tx", primary_key=["cc_num"], event_time="ts", expectation_suite=suite
    )
    result = fg.insert(frame([1], [1], [1.0]), write_options={"wait_for_job": True}, wait=True)
    assert result.version == 0 and result.validation == "passed"
    skipped = fg.insert(frame([2], [2], [-1.0]), validation_options={"run_validation": False})
    assert skipped.validation == "none"
    fg.insert(frame([3], [3], [5.0]), operation="insert")
    assert sorted(fg.read().cc_num) == [1, 2, 3]
    for kwargs, message in [
        ({"overwrite": True}, "overwrite=True is not supported: delete the rows first"),
        ({"storage": "offline"}, "storage='offline' is not supported"),
        ({"operation": "merge"}, "operation must be 'upsert' or 'insert'"),
        ({"write_options": ["x"]}, "write_options must be a dict"),
    ]:
        with pytest.raises(ValidationError, match=message):
            fg.insert(frame([9], [9], [9.0]), **kwargs)
    assert len(fg.commits()) == 3


def test_epoch_event_times_with_a_unit_or_detected(project, caplog: pytest.LogCaptureFixture) -> None:
    fs = project.feature_store
    millis = np.array([1_704_067_200_000, 1_704_153_600_000], dtype=np.int64)  # 2024-01-01, -02
    fg = fs.get_or_create_feature_group("ms", primary_key=["k"], event_time="datetime", event_time_unit="ms")
    fg.insert(pd.DataFrame({"k": [1, 2], "datetime": millis, "x": [1.0, 2.0]}))
    assert fg.read().datetime.tolist() == [
        pd.Timestamp("2024-01-01", tz="UTC"),
        pd.Timestamp("2024-01-02", tz="UTC"),
    ]
    assert fs.get_feature_group("ms").event_time_unit == "ms"  # stored with the group
    assert [f.dtype for f in fg.features] == ["int64", "timestamp", "float64"]
    with pytest.raises(AlreadyExistsError, match="event_time_unit: stored 'ms', given 's'"):
        fs.get_or_create_feature_group("ms", primary_key=["k"], event_time="datetime", event_time_unit="s")
    # without a unit, the magnitude tells it (pandas 3 makes epoch seconds of the Hopsworks
    # tutorial's `values.astype(np.int64) // 10**6`, pandas 2 milliseconds): a note says which
    detected = fs.get_or_create_feature_group("auto", primary_key=["k"], event_time="datetime")
    with caplog.at_level(logging.WARNING, logger="fti.features"):
        detected.insert(pd.DataFrame({"k": [1], "datetime": [1_704_067_200], "x": [1.0]}))
        detected.insert(pd.DataFrame({"k": [2], "datetime": [1_704_153_600_000_000], "x": [1.0]}))
    assert "read as epoch seconds" in caplog.text and "read as epoch microseconds" in caplog.text
    assert sorted(detected.read().datetime) == sorted(fg.read().datetime)
    for values in ([5, 6], [1_704_067_200, 1_704_067_200_000], [-1_704_067_200_000]):
        with pytest.raises(
            SchemaError, match="whose unit fti cannot tell: create the group with event_time_unit='ms'"
        ):
            detected.insert(
                pd.DataFrame({"k": [9] * len(values), "datetime": values, "x": [0.0] * len(values)})
            )
    with pytest.raises(ValidationError, match="event_time_unit must be one of"):
        fs.get_or_create_feature_group("bad", primary_key=["k"], event_time="t", event_time_unit="days")
    with pytest.raises(ValidationError, match="event_time_unit needs an event_time column"):
        fs.get_or_create_feature_group("bad", primary_key=["k"], event_time_unit="ms")
    assert [g.name for g in fs.list_feature_groups()] == ["auto", "ms"]


def test_upper_case_column_names_are_lowered_with_a_note(sqlite_project, caplog) -> None:
    fs = sqlite_project.feature_store
    with caplog.at_level(logging.WARNING, logger="fti.features"):
        fg = fs.get_or_create_feature_group("cards", primary_key=["CC_Num"], event_time="TS")
        fg.insert(pd.DataFrame({"CC_Num": [1], "TS": [at(1)], "Amount": [2.0]}))
    assert (fg.primary_key, fg.event_time) == (["cc_num"], "ts")
    assert [f.name for f in fg.features] == ["cc_num", "ts", "amount"]
    assert "['CC_Num', 'TS'] have upper-case letters" in caplog.text
    assert "['CC_Num', 'TS', 'Amount'] of the data for feature group 'cards'" in caplog.text
    fg.insert(pd.DataFrame({"cc_num": [2], "ts": [at(2)], "AMOUNT": [3.0]}))  # later inserts too
    assert fg.read().amount.tolist() == [2.0, 3.0]
    with pytest.raises(SchemaError, match="differ only in case"):
        fg.insert(pd.DataFrame({"cc_num": [3], "ts": [at(3)], "amount": [1.0], "Amount": [1.0]}))


def test_a_rejected_insert_with_hopsworks_arguments_writes_nothing(sqlite_project) -> None:
    fg = sqlite_project.feature_store.get_or_create_feature_group(
        "tx", primary_key=["cc_num"], event_time="ts"
    )
    with pytest.raises(ValidationError):
        fg.insert(frame([1], [1], [1.0]), overwrite=True)
    assert_nothing_written(fg)
    assert fg.features is None
