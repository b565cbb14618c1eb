"""hsml's ``mr.<framework>.create_model(...).save(dir)`` with its arguments (``version``,
``model_schema``, ``metrics``, ``description``, ``input_example``) and the safe formats of each
framework (XGBoost JSON/UBJ, LightGBM text, TorchScript), registered, scored by the serving
scorers and downloaded as an hsml user reads them back."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import AlreadyExistsError, ValidationError
from fti.inference.cache import ScorerCache
from fti.registry.schema import ModelSchema, Schema


def test_create_model_takes_hsml_arguments(
    project: fti.Project, xy: Any, classifier: Any, tmp_path: Path
) -> None:
    import skops.io as sio

    X, y = xy
    model_dir = tmp_path / "clf_model"
    model_dir.mkdir()
    sio.dump(classifier, model_dir / "clf_model.skops")
    model_schema = ModelSchema(input_schema=Schema(X), output_schema=Schema(pd.Series(y, name="label")))
    assert model_schema.to_dict() == {
        "input_schema": {"columnar_schema": [{"name": c, "type": "float64"} for c in X.columns]},
        "output_schema": {"columnar_schema": [{"name": "label", "type": "int64"}]},
    }
    mr = project.get_model_registry()
    builder = mr.python.create_model(
        version=3,
        name="clf",
        metrics={"accuracy": 0.9},
        model_schema=model_schema,
        input_example=X.sample(),
        description="Classifier",
    )
    with pytest.raises(AttributeError, match=r"registered .* after .save\(model_dir\)"):
        builder.flavor  # noqa: B018
    mv = builder.save(model_dir)
    assert (builder.version, builder.flavor) == (3, "sklearn")  # hsml: the saved object is the model
    assert mv.flavor_options["file"] == "clf_model.skops"  # the user's file name, read back below
    assert (mv.version, mv.metrics, mv.description) == (3, {"accuracy": 0.9}, "Classifier")
    assert mr.get_model("clf", version=3).model_schema == model_schema.to_dict()
    assert [(t.name, t.datatype) for t in mv.signature.inputs] == [(c, "FP64") for c in X.columns]
    # an existing version is refused and nothing is written; without version=, the next one
    with pytest.raises(AlreadyExistsError, match="already has version 3"):
        mr.python.create_model("clf", version=3).save(model_dir)
    assert [m.version for m in mr.list_models("clf")] == [3]
    assert mr.sklearn.create_model("clf").save(model_dir).version == 4
    # hsml's download() is a string path: the tutorials concatenate it
    folder = mv.download()
    loaded = sio.load(
        folder + "/clf_model.skops", trusted=sio.get_untrusted_types(file=folder + "/clf_model.skops")
    )
    np.testing.assert_array_equal(loaded.predict(X), classifier.predict(X))


def test_a_model_schema_names_the_inputs_without_an_input_example(project: fti.Project, xy: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = xy
    frame = X.astype({"age": "float32"})
    model = LogisticRegression().fit(frame.to_numpy(), y)
    mv = project.model_registry.register("m", model, model_schema=ModelSchema(Schema(frame)))
    assert [(t.name, t.datatype) for t in mv.signature.inputs] == [
        ("amount", "FP64"),
        ("age", "FP32"),
        ("hour", "FP64"),
    ]
    tensor = project.model_registry.register("t", model, model_schema=ModelSchema(Schema(X.to_numpy())))
    assert [(t.name, t.datatype) for t in tensor.signature.inputs] == [
        (f"input_{i}", "FP64") for i in range(3)
    ]
    assert tensor.model_schema == {
        "input_schema": {"tensor_schema": {"type": "float64", "shape": [60, 3]}},
        "output_schema": None,
    }


def test_bad_schemas_and_versions_are_refused(project: fti.Project, xy: Any, classifier: Any) -> None:
    X, _ = xy
    mr = project.model_registry
    with pytest.raises(ValidationError, match=r"input columns \['a', 'b'\] differ from the model's inputs"):
        mr.register(
            "m",
            classifier,
            input_example=X.head(2),
            model_schema=ModelSchema(Schema(X[["amount"]].set_axis(["a"], axis=1).assign(b=1.0))),
        )
    with pytest.raises(ValidationError, match="model_schema must be a ModelSchema"):
        mr.register("m", classifier, model_schema=Schema(X))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Schema takes a pandas DataFrame"):
        Schema("amount")
    with pytest.raises(ValidationError, match="string 'name' and 'type'"):
        Schema([{"name": "amount"}])
    with pytest.raises(ValidationError, match="input_schema must be a Schema"):
        ModelSchema(input_schema=X)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="invalid model version 0"):
        mr.register("m", classifier, version=0)
    assert mr.list_models() == []


def _scored(mv: Any, X: np.ndarray, tmp_path: Path) -> dict[str, np.ndarray]:
    """What the model server and batch scoring compute for ``mv`` (the shared scorer cache)."""
    return ScorerCache(tmp_path / "scorers").get(mv).predict(X)


def test_xgboost_files_register_through_mr_xgboost_and_mr_python(
    project: fti.Project, xy: Any, tmp_path: Path
) -> None:
    import xgboost as xgb

    X, y = xy
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    expected = model.predict_proba(X)[:, 1]
    mr = project.model_registry
    for framework, suffix in (("xgboost", "json"), ("python", "json"), ("xgboost", "ubj")):
        model_dir = tmp_path / f"{framework}_{suffix}"
        model_dir.mkdir()
        model.save_model(str(model_dir / f"model.{suffix}"))
        (model_dir / "config.json").write_text(json.dumps({"threshold": 0.5}))  # not a model: an artifact
        mv = getattr(mr, framework).create_model("fraud", input_example=X.head(3)).save(model_dir)
        assert mv.flavor == "xgboost" and mv.flavor_options["file"] == f"model.{suffix}"
        assert mv.flavor_options["class"] == "XGBClassifier" and "config.json" in mv.artifacts
        np.testing.assert_allclose(mv.load().predict_proba(X)[:, 1], expected, rtol=1e-6)
        scored = _scored(mv, X.to_numpy(), tmp_path)
        np.testing.assert_allclose(np.asarray(scored["predict_proba"])[:, 1], expected, rtol=1e-5)
        folder = mv.download()
        again = xgb.XGBClassifier()
        again.load_model(folder + f"/model.{suffix}")
        np.testing.assert_allclose(again.predict_proba(X)[:, 1], expected, rtol=1e-6)
    booster_dir = tmp_path / "booster"
    booster_dir.mkdir()
    model.get_booster().save_model(str(booster_dir / "model.json"))
    booster = mr.xgboost.create_model("raw").save(booster_dir)
    assert booster.flavor_options["kind"] == "booster"
    with pytest.raises(ValidationError, match=r"mr.sklearn.create_model takes .skops files"):
        mr.sklearn.create_model("m").save(booster_dir)
    (booster_dir / "model.json").write_text(json.dumps({"learner": {"broken": True}, "version": [3, 0, 0]}))
    with pytest.raises(ValidationError, match=r"model\.json is not a readable"):
        mr.xgboost.create_model("m").save(booster_dir)


def test_a_lightgbm_text_file_registers_through_mr_lightgbm(
    project: fti.Project, xy: Any, tmp_path: Path
) -> None:
    import lightgbm as lgb

    X, y = xy
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X.to_numpy(), y)
    model_dir = tmp_path / "lgb_model"
    model_dir.mkdir()
    model.booster_.save_model(str(model_dir / "model.txt"))
    (model_dir / "requirements.txt").write_text("lightgbm\n")  # a text file, not a model
    mv = project.model_registry.lightgbm.create_model("lgb", input_example=X.to_numpy()[:3]).save(model_dir)
    assert mv.flavor == "lightgbm" and "requirements.txt" in mv.artifacts
    expected = model.predict_proba(X.to_numpy())[:, 1]
    np.testing.assert_allclose(mv.load().predict(X.to_numpy()), expected, rtol=1e-6)
    scored = np.asarray(_scored(mv, X.to_numpy(), tmp_path)["predict"]).reshape(-1)
    np.testing.assert_allclose(scored, expected, rtol=1e-5)
    with pytest.raises(ValidationError, match=r"mr.xgboost.create_model takes .ubj or XGBoost .json files"):
        project.model_registry.xgboost.create_model("m").save(model_dir)


def test_torchscript_registers_through_mr_torch_and_a_torch_save_pickle_is_refused(
    project: fti.Project, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")

    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(dim=1))
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    model_dir = tmp_path / "torch_model"
    model_dir.mkdir()
    with warnings.catch_warnings():  # torch.jit.* is deprecated; TorchScript is still the safe format
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), str(model_dir / "model.pth"))
    mv = project.model_registry.torch.create_model("net", input_example=X[:3]).save(model_dir)
    assert mv.flavor == "pytorch" and mv.flavor_options["file"] == "model.pth"
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(np.asarray(_scored(mv, X, tmp_path)["predict"]), expected, rtol=1e-5)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    torch.save(net, str(pickled / "model.pt"))  # a pickle of the module: loading it runs code
    with pytest.raises(ValidationError, match=r"\['model.pt'\] would be loaded with pickle"):
        project.model_registry.torch.create_model("net").save(pickled)
    (pickled / "model.pt").write_bytes(pickle.dumps({"not": "loaded"}))
    with pytest.raises(ValidationError, match="would be loaded with pickle"):
        project.model_registry.python.create_model("net").save(pickled)
    assert [m.version for m in project.model_registry.list_models()] == [1]
