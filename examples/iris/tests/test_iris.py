"""The iris example in-process on a real project: pipelines, promotion gate, deployment, batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fti
from examples.iris import pipelines as iris
from fti.pipelines.definitions import OnNewData, spec_of
from fti.registry.promotion import PromotionRejectedError


def test_the_bundled_data() -> None:
    frame = iris.iris_frame()
    assert len(frame) == 150 and frame["id"].is_unique
    assert sorted(frame[iris.LABEL].unique()) == ["setosa", "versicolor", "virginica"]
    assert str(frame["measured_at"].dt.tz) == "UTC"
    assert list(frame.columns) == ["id", "measured_at", *iris.FEATURES, iris.LABEL]


def test_the_pipelines_are_declared() -> None:
    kinds = {f.__name__: spec_of(f) for f in (iris.iris_features, iris.train_iris, iris.score_iris)}
    assert {name: s.kind for name, s in kinds.items() if s} == {
        "iris_features": "feature",
        "train_iris": "training",
        "score_iris": "inference",
    }
    trigger = kinds["train_iris"].trigger  # type: ignore[union-attr]
    assert isinstance(trigger, OnNewData) and trigger.feature_group == iris.FEATURE_GROUP


def test_feature_training_online_and_batch(sqlite_project: fti.Project) -> None:
    project = sqlite_project
    iris.iris_features(project)
    iris.iris_features(project)  # re-running upserts the same 150 rows
    assert len(project.feature_store.get_feature_group(iris.FEATURE_GROUP).read()) == 150

    metrics = iris.train(project)
    assert metrics["accuracy"] >= 0.9
    model = project.model_registry.get_model("iris@production")
    assert model.metrics["accuracy"] == metrics["accuracy"]
    assert model.feature_view_name == iris.FEATURE_VIEW
    assert [s.name for s in model.signature.inputs] == iris.FEATURES
    png = model.read_artifact("confusion_matrix.png")  # registered with the model, digest-checked
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    assert "confusion_matrix.png" in model.artifacts
    evaluation = project.model_registry.get_evaluation("iris@production")  # what the gate judged
    assert evaluation.task == "multiclass" and evaluation.metrics["accuracy"] == pytest.approx(
        metrics["accuracy"]
    )
    per_variety = {s.value: s for s in evaluation.by_slice if s.feature == iris.LABEL}
    assert set(per_variety) == {"setosa", "versicolor", "virginica"}
    assert sum(s.rows for s in per_variety.values()) == evaluation.rows == 30

    flowers = iris.sample_requests()
    answer = project.serving.get(iris.DEPLOYMENT).predict(flowers)  # in-process: no server runs
    assert answer["predict"] == ["setosa", "versicolor", "virginica"]
    expected = model.predict(pd.DataFrame(flowers))
    np.testing.assert_allclose(answer["predict_proba"], expected["predict_proba"])

    assert iris.score(project) == 150
    predictions = project.feature_store.get_feature_group(iris.PREDICTIONS).read()
    truth = iris.iris_frame().set_index("id")[iris.LABEL]
    accuracy = (predictions.set_index("id")["prediction"] == truth.loc[predictions["id"]].to_numpy()).mean()
    assert len(predictions) == 150 and accuracy > 0.9


def test_a_model_below_the_floor_is_registered_but_not_promoted(sqlite_project: fti.Project) -> None:
    project = sqlite_project
    iris.iris_features(project)
    iris.train(project)
    with pytest.raises(PromotionRejectedError, match="accuracy"):
        iris.train(project, n_neighbors=110)  # votes of most of the training set: about chance
    mr = project.model_registry
    assert [m.version for m in mr.list_models(iris.MODEL)] == [1, 2]
    assert mr.get_model(iris.MODEL, version=2).metrics["accuracy"] < 0.9
    assert mr.get_model("iris@production").version == 1


def test_the_confusion_matrix_image() -> None:
    png = iris.confusion_matrix_png(np.array([[3, 0], [1, 2]]), ["a", "b"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
