"""The feature store facade: create, get and list feature groups and views, idempotently, with
typed errors for unknown or badly named ones."""

from __future__ import annotations

import pytest

import fti
from fti.errors import AlreadyExistsError, NotFoundError, ValidationError
from tests.unit.features._data import make_view


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


def test_get_or_create_with_a_different_description_suite_or_features_says_what_differs(
    project: fti.Project,
) -> None:
    import pandas as pd
    import pandera.pandas as pa

    fs = project.feature_store
    suite = pa.DataFrameSchema({"amount": pa.Column(float, pa.Check.ge(0))})
    declared = [fti.Feature("id", "int64"), fti.Feature("amount", "float64")]
    fs.get_or_create_feature_group(
        "tx", primary_key=["id"], description="card payments", expectation_suite=suite, features=declared
    )
    # the same definition, or arguments left out, return the group
    same = fs.get_or_create_feature_group(
        "tx", primary_key=["id"], description="card payments", expectation_suite=suite, features=declared
    )
    assert fs.get_or_create_feature_group("tx", primary_key=["id"]).id == same.id
    with pytest.raises(AlreadyExistsError) as info:
        fs.get_or_create_feature_group("tx", primary_key=["id"], description="all payments")
    assert info.value.message == (
        "feature group 'tx' version 1 already exists with a different definition (description: "
        "stored 'card payments', given 'all payments'); change the description with "
        "fs.get_feature_group('tx', 1).update_description(...), or create version 2 for a new "
        "definition"
    )
    other_suite = pa.DataFrameSchema({"amount": pa.Column(float, pa.Check.ge(10))})
    with pytest.raises(
        AlreadyExistsError, match=r"different definition \(expectation_suite: the stored suite differs"
    ):
        fs.get_or_create_feature_group("tx", primary_key=["id"], expectation_suite=other_suite)
    more = [*declared, fti.Feature("country", "string")]
    with pytest.raises(
        AlreadyExistsError,
        match=r"features: stored \[id int64, amount float64\], given \[id int64, amount float64, country string\]",
    ) as info:
        fs.get_or_create_feature_group("tx", primary_key=["id"], features=more)
    assert "append_features" in info.value.message
    same.update_description("all card payments")
    assert fs.get_feature_group("tx").description == "all card payments"
    with pytest.raises(ValidationError, match="description must be a string"):
        same.update_description(3)  # type: ignore[arg-type]
    # a schema fixed by the first insert is compared too
    inferred = fs.get_or_create_feature_group("inferred", primary_key=["id"])
    inferred.insert(pd.DataFrame({"id": [1], "x": [1.0]}))
    with pytest.raises(AlreadyExistsError, match="features: stored"):
        fs.get_or_create_feature_group("inferred", primary_key=["id"], features=[fti.Feature("id", "int64")])
