"""Listing and searching models and model versions: matching, tags, metric order, pages."""

from __future__ import annotations

import pytest

import fti
from fti.errors import NotFoundError, ValidationError


def _register(project: fti.Project, classifier) -> None:  # type: ignore[no-untyped-def]
    mr = project.model_registry
    for name, metrics, description in [
        ("fraud", {"auc": 0.81}, "baseline"),
        ("fraud", {"auc": 0.93, "f1": 0.7}, "gradient boosting"),
        ("fraud", {}, "no metrics"),
        ("fraud", {"auc": 0.88}, "Tuned Boosting"),
        ("churn", {"auc": 0.7}, "logistic"),
    ]:
        mr.register(name, classifier, metrics=metrics, description=description)
    mr.set_alias("fraud", 2, "production")
    mr.get_model("fraud", version=4).add_tag("candidate")
    mr.get_model("churn", version=1).add_tag("candidate-old")


def test_models_list_with_versions_and_aliases(project: fti.Project, classifier) -> None:
    _register(project, classifier)
    mr = project.model_registry
    models = mr.search_models()
    assert [(m.name, m.versions, m.latest_version, m.aliases) for m in models] == [
        ("churn", 1, 1, {}),
        ("fraud", 4, 4, {"production": 2}),
    ]
    assert models.items[1].description == "Tuned Boosting"
    assert [m.name for m in mr.search_models("boosting")] == ["fraud"]  # a version's description
    assert [m.name for m in mr.search_models("candidate")] == ["churn", "fraud"]  # tags
    assert [m.name for m in mr.search_models("chu")] == ["churn"]
    mr.delete_version("churn", 1)
    assert [(m.name, m.versions, m.latest_version) for m in mr.search_models("churn")] == [("churn", 0, None)]


def test_versions_sorted_by_metric_time_or_version(project: fti.Project, classifier) -> None:
    _register(project, classifier)
    mr = project.model_registry
    by_auc = mr.search_model_versions(name="fraud", order_by="metrics.auc desc")
    assert [v.version for v in by_auc] == [2, 4, 1, 3]  # no auc: last
    assert [v.version for v in mr.search_model_versions(name="fraud", order_by="metrics.auc asc")] == [
        1,
        4,
        2,
        3,
    ]
    page = mr.search_model_versions(name="fraud", order_by="metrics.auc desc", offset=1, limit=2)
    assert ([v.version for v in page], page.total) == ([4, 1], 4)
    assert [v.version for v in mr.search_model_versions(name="fraud")] == [4, 3, 2, 1]
    assert [v.version for v in mr.search_model_versions(name="fraud", order_by="version asc")] == [1, 2, 3, 4]
    assert [(v.name, v.version) for v in mr.search_model_versions(order_by="created_at desc", limit=2)] == [
        ("churn", 1),
        ("fraud", 4),
    ]
    assert [v.version for v in mr.search_model_versions("boosting")] == [4, 2]
    assert [v.version for v in mr.search_model_versions(tag="candidate")] == [4]
    assert [v.name for v in mr.search_model_versions("candidate")] == ["churn", "fraud"]
    top = mr.search_model_versions(name="fraud", order_by="metrics.auc desc", limit=1).items[0]
    assert top.aliases == ["production"] and top.load() is not None  # bound to the registry


@pytest.mark.parametrize("order", ["auc", "metrics.", "version sideways", "version asc desc", ""])
def test_bad_order_by(sqlite_project: fti.Project, order: str) -> None:
    with pytest.raises(ValidationError, match="invalid order_by"):
        sqlite_project.model_registry.search_model_versions(order_by=order)


def test_unknown_model_name(sqlite_project: fti.Project) -> None:
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        sqlite_project.model_registry.search_model_versions(name="nope")


def test_versions_of_one_feature_view(sqlite_project: fti.Project, classifier, xy) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    X, y = xy
    fs = sqlite_project.feature_store
    fg = fs.get_or_create_feature_group("rows", primary_key=["id"])
    fg.insert(pd.DataFrame({"id": range(len(X)), **{c: X[c] for c in X.columns}, "y": y}))
    fv = fs.get_or_create_feature_view("view", query=fg.select([*X.columns, "y"]), labels=["y"])
    other = fs.get_or_create_feature_view("other", query=fg.select(list(X.columns)))
    mr = sqlite_project.model_registry
    mr.register("a", classifier, feature_view=fv)
    mr.register("b", classifier, feature_view=(fv.name, fv.version))
    mr.register("a", classifier)
    assert [(v.name, v.version) for v in mr.search_model_versions(feature_view=("view", 1))] == [
        ("a", 1),
        ("b", 1),
    ]
    assert mr.search_model_versions(feature_view=(other.name, other.version)).total == 0
    with pytest.raises(NotFoundError, match="feature view 'nope' version 1 not found"):
        mr.search_model_versions(feature_view=("nope", 1))
