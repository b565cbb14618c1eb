"""The feature domain's catalog records on SQLite and PostgreSQL: a concurrent create is reported,
not raised, and records come back as they were stored."""

from __future__ import annotations

import fti
from fti.features import records
from fti.features.records import TrainingDataset
from tests.unit.features._data import at, make_view


def test_a_second_create_of_the_same_version_is_refused_and_the_first_kept(project: fti.Project) -> None:
    catalog = project.backends.catalog
    values = {
        "name": "g",
        "version": 1,
        "primary_key": ["id"],
        "event_time": None,
        "online_enabled": False,
        "description": "first",
        "features": [{"name": "id", "dtype": "int64", "description": ""}],
        "expectation_suite": None,
        "table_name": "default__g__v1",
    }
    assert records.insert_feature_group(catalog, project.id, values) is True
    again = {**values, "description": "second", "table_name": "other"}
    assert records.insert_feature_group(catalog, project.id, again) is False
    meta = records.find_feature_group(catalog, project.id, "g", None)
    assert meta is not None and (meta.description, meta.table_name) == ("first", "default__g__v1")
    assert [f.name for f in meta.features or []] == ["id"] and meta.created_at.tzinfo is not None
    assert [m.id for m in records.list_feature_groups(catalog, project.id)] == [meta.id]
    assert records.list_feature_groups(catalog, project.id, online_only=True) == []
    assert records.find_feature_group(catalog, project.id, "g", 2) is None


def test_training_dataset_records_round_trip(project: fti.Project, groups) -> None:
    catalog = project.backends.catalog
    fv = make_view(project, groups)
    record = TrainingDataset(
        version=1,
        description="by hand",
        start_time=at(1),
        end_time=None,
        split={"kind": "time", "test_start": at(30)},
        input_versions={"a": 0, "b": 3},
        transformation_stats={"amount": {"mean": 1.5, "std": 0.5}},
        row_counts={"total": 3, "train": 2, "test": 1},
        table_name="td_table",
        table_version=0,
        created_at=at(2),
    )
    assert records.insert_training_dataset(catalog, fv.id, record) is True
    assert records.insert_training_dataset(catalog, fv.id, record) is False  # the version is taken
    assert records.find_training_datasets(catalog, fv.id) == [record]
    assert records.find_training_datasets(catalog, fv.id, 2) == []
    assert record.splits == ["train", "test"]
    with catalog.engine.connect() as conn:
        assert records.training_dataset_numbers(conn, fv.id) == [1]
        assert records.training_dataset_inputs(conn, fv.id, 1) == {"a": 0, "b": 3}
        assert records.find_view_key(conn, project.id, "fraud", 1) == records.FeatureViewKey(
            fv.id, "fraud", 1
        )
