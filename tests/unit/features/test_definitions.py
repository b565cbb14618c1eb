"""Feature group and feature view definitions: a bad one raises a typed error and stores nothing."""

from __future__ import annotations

import pytest

import fti
from fti.errors import SchemaError, ValidationError
from tests.unit.features._data import assert_no_view, make_view


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


BAD_GROUPS = [
    ({"primary_key": []}, "primary_key must be a non-empty list of column names"),
    ({"primary_key": ["id", "id"]}, "primary_key lists a column twice"),
    ({"primary_key": [1]}, "primary_key must be a non-empty list"),
    ({"event_time": ""}, "event_time must be a column name or None"),
    ({"event_time": "id"}, "event_time 'id' cannot also be a primary-key column"),
    ({"online_enabled": "yes"}, "online_enabled must be True or False"),
    ({"features": []}, "features must be a non-empty list of fti.Feature"),
    (
        {"features": [fti.Feature("x", "float64")]},
        r"must declare the key and event time columns; missing \['id'\]",
    ),
    (
        {"event_time": "ts", "features": [fti.Feature("id", "int64"), fti.Feature("ts", "string")]},
        "event time feature 'ts' must have dtype 'timestamp'",
    ),
]


def test_bad_group_definitions(project) -> None:
    for changes, match in BAD_GROUPS:
        with pytest.raises(ValidationError, match=match):
            project.feature_store.get_or_create_feature_group("g", **{"primary_key": ["id"], **changes})
    assert project.feature_store.list_feature_groups() == []
