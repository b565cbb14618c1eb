"""The serverless-ml iris system as ported from Hopsworks runs end to end on fti: backfill, daily
synthetic flowers, training, and batch inference that predicts the latest flower."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

import fti
from examples.hopsworks_iris import batch_inference_pipeline, feature_pipeline, training_pipeline


# the tutorial's confusion matrix of a one-flower history warns (as it does on Hopsworks), and
# fig.show() on a machine without a display says it cannot show the figure
@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@pytest.mark.filterwarnings("ignore:FigureCanvasAgg is non-interactive:UserWarning")
def test_the_ported_iris_system_runs_end_to_end(
    sqlite_project: fti.Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the tutorial writes its model directory into the working directory
    random.seed(3)
    feature_pipeline.main(sqlite_project, backfill=True)
    fg = sqlite_project.feature_store.get_feature_group("iris", 1)
    assert len(fg.read()) == 149  # iris.csv repeats one flower: stored once, as Hopsworks does
    # select_all keeps the primary-key columns, which are iris' features: the view has four
    metrics = training_pipeline.main(sqlite_project)
    view = sqlite_project.feature_store.get_feature_view("iris", 1)
    assert view.feature_names() == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert metrics["accuracy"] > 0.8
    model = sqlite_project.model_registry.get_model("iris", 1)
    assert model.metrics == {"accuracy": metrics["accuracy"]} and model.flavor == "sklearn"
    # registered from the directory as the tutorial does: its file name and hsml's model schema kept
    assert (
        model.flavor_options["file"] == "iris_model.skops"
        and (tmp_path / "iris_model/iris_model.skops").is_file()
    )
    assert model.description == "Iris Flower Predictor"
    assert model.read_artifact("confusion_matrix.png").startswith(b"\x89PNG")  # the heatmap, stored with it
    assert [c["name"] for c in model.model_schema["input_schema"]["columnar_schema"]] == view.feature_names()
    assert model.model_schema["output_schema"] == {"columnar_schema": [{"name": "variety", "type": "str"}]}

    labels = []
    for day in range(3):  # the daily run: one new flower, then the batch scoring of "the latest"
        feature_pipeline.main(sqlite_project)
        written = fg.read()
        assert len(written) == 150 + day
        newest = written.iloc[-1]
        time.sleep(1.0)  # the history's key is the time to the second (one run a day, in the tutorial)
        out = batch_inference_pipeline.main(sqlite_project)
        # the latest flower is the one written last, every day (not a fixed row of the table)
        assert out["label"] == newest["variety"]
        last = out["batch_data"].iloc[-1]
        assert list(last[["sepal_length", "petal_width"]]) == list(newest[["sepal_length", "petal_width"]])
        assert out["flower"] == model.load().predict(out["batch_data"].tail(1))[0]
        labels.append(out["label"])
        assert len(out["history"]) == day + 1
    assert list(out["history"]["label"]) == labels
    assert out["confusion_matrix"].sum() == 3
