"""Feature views' training API end to end on real Delta tables and a real catalog (SQLite and
PostgreSQL): training datasets, random and time splits, feature names, bad split options."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from fti.errors import ValidationError
from tests.unit.features._data import at, make_view


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


def test_deleting_a_group_a_view_uses_is_refused_and_force_deletes_the_views(project, groups) -> None:
    from fti.errors import ConflictError, NotFoundError

    fs = project.feature_store
    fv = make_view(project, groups)
    fv.train_test_split(test_size=0.5, seed=1)
    td_table = fv.training_dataset(1).table_name
    other = fs.get_or_create_feature_view("tx_only", query=groups["tx"].select(["amount"]))
    with pytest.raises(ConflictError) as info:
        groups["profiles"].delete()
    assert info.value.message == (
        "feature group 'profiles' version 1 is used by feature view(s) fraud version 1; delete "
        "them first (fv.delete()) or delete the group with force=True, which deletes them too"
    )
    assert fs.get_feature_group("profiles").commits()  # nothing was deleted
    assert [v.name for v in fs.list_feature_views()] == ["fraud", "tx_only"]
    groups["profiles"].delete(force=True)
    assert [v.name for v in fs.list_feature_views()] == ["tx_only"]
    with pytest.raises(NotFoundError):
        fs.get_feature_view("fraud")
    assert project.backends.offline.version(td_table) is None  # its training data went with it
    assert other.get_batch_data().shape[0] == 40


def test_listing_views_survives_a_group_deleted_underneath(project, groups) -> None:
    """A view whose group is gone (deleted by an older fti) is listed; using it says why, and
    it can be deleted."""
    from fti.errors import NotFoundError
    from fti.features import records

    fs = project.feature_store
    make_view(project, groups)
    fs.get_or_create_feature_view("tx_only", query=groups["tx"].select(["amount"]))
    windows = groups["windows"]
    project.backends.offline.delete(windows.table_name)
    records.delete_feature_group(project.backends.catalog, windows.id)  # the group, bypassing the check
    views = fs.list_feature_views()
    assert [v.name for v in views] == ["fraud", "tx_only"]
    broken = fs.get_feature_view("fraud")
    with pytest.raises(
        NotFoundError, match=r"feature view 'fraud' version 1 reads feature group 'windows'.*fv\.delete\(\)"
    ):
        broken.get_batch_data()
    broken.delete()
    assert [v.name for v in fs.list_feature_views()] == ["tx_only"]
