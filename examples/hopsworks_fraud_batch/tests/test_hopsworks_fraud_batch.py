"""The fraud_batch system as ported from Hopsworks runs end to end on fti: feature pipeline with
epoch event times and an expectation suite, a view joining the window aggregates, XGBoost training
and registration, batch scoring with feature-view logging."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import fti
from examples.hopsworks_fraud_batch import batch_inference, data, feature_pipeline, training_pipeline
from fti.errors import ExpectationError


# the tutorial's own pandas code (inplace=True) warns under pandas 3.1, as it would anywhere
@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
@pytest.mark.filterwarnings("ignore:FigureCanvasAgg is non-interactive:UserWarning")  # figure_cm.show()
def test_the_ported_fraud_batch_system_runs_end_to_end(
    sqlite_project: fti.Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the tutorial writes its model directory into the working directory
    csv = data.write_csv_files(tmp_path / "card_fraud_data")
    frames = feature_pipeline.main(sqlite_project, csv)
    fs = sqlite_project.feature_store
    trans_fg = fs.get_feature_group("transactions_fraud_batch_fg", 1)
    stored = trans_fg.read()
    assert len(stored) == len(frames["transactions"])
    # the tutorial's integer event times (seconds, with pandas 3's microsecond parsing) read right
    times = pd.read_csv(csv / "transactions.csv", parse_dates=["datetime"])["datetime"]
    assert stored["datetime"].min() == times.min().tz_localize("UTC")
    assert stored["datetime"].max() == times.max().tz_localize("UTC")
    bad = stored.head(1).assign(amount=-1.0, tid="negative")  # the suite's "amount >= 0"
    with pytest.raises(ExpectationError, match="amount"):
        trans_fg.insert(bad)
    descriptions = {f.name: f.description for f in trans_fg.features}
    assert descriptions["loc_delta"].startswith("Haversine distance")
    aggs_fg = fs.get_feature_group("transactions_4h_aggs_fraud_batch_fg", 1)
    assert len(aggs_fg.read()) == len(frames["window_aggs"])

    trained = training_pipeline.main(sqlite_project)
    assert trained["metrics"]["f1_score"] > 0.8
    model = trained["model"]
    assert model.flavor == "xgboost" and "datetime" not in [s.name for s in model.signature.inputs]
    # registered from the tutorial's directory: its XGBoost JSON file, under the same name
    assert model.flavor_options == {"file": "model.json", "kind": "sklearn", "class": "XGBClassifier"}
    assert model.artifacts["model.json"] and (tmp_path / "fraud_batch_model" / "model.json").is_file()
    assert model.read_artifact("images/confusion_matrix.png").startswith(b"\x89PNG")
    view = model.get_feature_view()
    assert (view.name, view.version) == ("transactions_view_fraud_batch_fv", 1)
    assert view.labels == ["fraud_label"] and list(view.transformations) == ["category"]

    out = batch_inference.main(sqlite_project)
    assert len(out["batch_data"]) == len(stored)
    assert out["untransformed_batch_data"]["category"].isin(data.CATEGORIES).all()
    assert pd.api.types.is_integer_dtype(out["batch_data"]["category"])
    assert list(out["predictions"]) == list(model.load().predict(out["batch_data"]))
    assert 0 < out["predictions"].sum() <= stored["fraud_label"].sum() * 2  # flags the planted frauds
    for log in (out["log"], out["transformed_log"]):
        assert len(log) == 1000 and set(log["model_version"]) == {1}
        assert list(log["predict"]) == list(out["predictions"][:1000])
    assert out["log"]["category"].isin(data.CATEGORIES).all()
