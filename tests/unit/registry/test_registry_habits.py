"""MLflow and Hopsworks habits of the registry: metrics logged after registration with their
time, a self-describing download (model files + manifest + requirements), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fti
from fti.errors import ValidationError


def test_metrics_logged_after_registration_keep_their_history(
    project: fti.Project, xy: Any, classifier: Any
) -> None:
    X, _ = xy
    mr = project.model_registry
    v1 = mr.register("clf", classifier, metrics={"auc": 0.80}, input_example=X.head(3))
    v2 = mr.register("clf", classifier, metrics={"auc": 0.85})
    assert mr.get_best_model("clf", "auc").version == v2.version
    before = datetime.now(UTC)
    updated = v1.log_metrics({"auc": 0.9, "recall": 0.7})  # an evaluation on fresh data, later
    assert updated.metrics == {"auc": 0.9, "recall": 0.7}
    assert mr.get_model("clf", version=1).metrics == {"auc": 0.9, "recall": 0.7}  # persisted
    assert mr.get_best_model("clf", "auc").version == 1  # selection sees the later metric
    history = updated.metric_history()
    assert [p.value for p in history["auc"]] == [0.80, 0.9]
    assert history["auc"][0].logged_at == v1.created_at < before <= history["auc"][1].logged_at
    assert [p.value for p in history["recall"]] == [0.7] and history["recall"][0].logged_by
    assert v1.log_metric("auc", 0.91).metrics["auc"] == 0.91
    assert [p.value for p in v2.metric_history()["auc"]] == [0.85]  # the other version is untouched
    for bad, message in [
        ({}, "at least one metric"),
        ({"auc": float("nan")}, "finite"),
        ({"": 1.0}, "names"),
    ]:
        with pytest.raises(ValidationError, match=message):
            v1.log_metrics(bad)
    assert mr.get_model("clf", version=1).metrics["auc"] == 0.91  # a refused log changed nothing


def test_download_without_destination_is_a_self_describing_folder(
    project: fti.Project, xy: Any, classifier: Any, tmp_path: Path
) -> None:
    X, _ = xy
    report = tmp_path / "report.txt"
    report.write_text("precision 0.9")
    with project.run("train", params={"C": 1.0}) as run:
        run.log_metric("loss", 0.2)
        mv = project.model_registry.register(
            "clf",
            classifier,
            run=run,
            metrics={"auc": 0.8},
            input_example=X.head(3),
            artifacts={"report.txt": report},
        )
    mv = mv.log_metrics({"auc": 0.82})
    folder = mv.download()
    try:
        assert folder.is_dir() and folder.name.startswith("fti-clf-1-")
        manifest = json.loads((folder / "fti_model.json").read_text())
        assert (manifest["name"], manifest["version"], manifest["flavor"]) == ("clf", 1, "sklearn")
        assert [s["name"] for s in manifest["signature"]["inputs"]] == list(X.columns)
        assert manifest["metrics"] == {"auc": 0.82}
        assert [p["value"] for p in manifest["metric_history"]["auc"]] == [0.8, 0.82]
        assert manifest["lineage"]["run"]["params"] == {"C": 1.0}
        assert manifest["requirements"]["scikit-learn"] == run.packages["scikit-learn"]
        assert set(manifest["artifacts"]) == set(mv.artifacts) and "report.txt" in manifest["artifacts"]
        assert (folder / "report.txt").read_text() == "precision 0.9"
        requirements = (folder / "requirements.txt").read_text().splitlines()
        assert f"scikit-learn=={run.packages['scikit-learn']}" in requirements
        # every stored file is there, and the model loads from the folder with its flavor alone
        assert all((folder / name).is_file() for name in mv.artifacts)
        model = mv.flavor_impl.load(folder, manifest["flavor_options"])
        np.testing.assert_array_equal(model.predict(X), classifier.predict(X))
    finally:
        import shutil

        shutil.rmtree(folder)
    explicit = mv.download(tmp_path / "here")
    assert explicit == tmp_path / "here" and (explicit / "fti_model.json").is_file()
    with pytest.raises(ValidationError, match=r"fti_model\.json"):
        project.model_registry.register("clf", classifier, artifacts={"fti_model.json": report})


def test_a_registered_requirements_file_is_kept(
    project: fti.Project, classifier: Any, tmp_path: Path
) -> None:
    pinned = tmp_path / "requirements.txt"
    pinned.write_text("scikit-learn==1.0\n")
    mv = project.model_registry.register("clf", classifier, artifacts={"requirements.txt": pinned})
    folder = mv.download(tmp_path / "out")
    assert (folder / "requirements.txt").read_text() == "scikit-learn==1.0\n"
    assert json.loads((folder / "fti_model.json").read_text())["requirements"]["fti"] == fti.__version__


def test_the_migration_copies_registered_metrics_into_the_history(tmp_path: Path, classifier: Any) -> None:
    from alembic import command
    from alembic.config import Config

    from fti.storage.metadata.sql import _MIGRATIONS

    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        mv = project.model_registry.register("clf", classifier, metrics={"auc": 0.8, "f1": 0.6})
        catalog = project.backends.catalog
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with catalog.engine.begin() as conn:  # type: ignore[attr-defined]
            config.attributes["connection"] = conn
            command.downgrade(config, "0010_model_evaluations")  # the catalog before this feature
    with fti.connect(home=home) as project:  # migrated to head on connect
        history = project.model_registry.get_model("clf", version=1).metric_history()
    assert {k: [(p.value, p.logged_at) for p in v] for k, v in history.items()} == {
        "auc": [(0.8, mv.created_at)],
        "f1": [(0.6, mv.created_at)],
    }


def test_hopsworks_style_directory_registration(
    project: fti.Project, xy: Any, classifier: Any, tmp_path: Path
) -> None:
    import skops.io as sio

    X, _ = xy
    model_dir = tmp_path / "iris_model"
    (model_dir / "images").mkdir(parents=True)
    sio.dump(classifier, model_dir / "model.skops")
    (model_dir / "images" / "confusion_matrix.png").write_bytes(b"\x89PNG fake")
    (model_dir / "README.md").write_text("iris classifier")
    (model_dir / ".DS_Store").write_bytes(b"junk")  # hidden files are left out
    mr = project.model_registry
    builder = mr.sklearn.create_model(
        "iris", metrics={"accuracy": 0.97}, description="d", input_example=X.head(3)
    )
    assert mr.list_models() == []  # lazy, as in hsml: nothing is registered before save
    mv = builder.save(model_dir)
    assert (mv.name, mv.version, mv.flavor, mv.metrics, mv.description) == (
        "iris",
        1,
        "sklearn",
        {"accuracy": 0.97},
        "d",
    )
    assert [s.name for s in mv.signature.inputs] == list(X.columns)
    assert {"images/confusion_matrix.png", "README.md"} <= set(mv.artifacts)
    assert ".DS_Store" not in mv.artifacts
    assert mv.read_artifact("images/confusion_matrix.png") == b"\x89PNG fake"
    np.testing.assert_array_equal(mv.load().predict(X), classifier.predict(X))
    again = mr.python.create_model("iris").save(model_dir / "model.skops")  # a single file works too
    assert again.version == 2 and set(again.artifacts) == {"model.skops"}


def test_directory_registration_refuses_what_it_cannot_store_safely(
    project: fti.Project, classifier: Any, tmp_path: Path
) -> None:
    import pickle

    import skops.io as sio

    mr = project.model_registry
    cases: list[tuple[dict[str, Any], Any, str]] = []
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "model.pkl").write_bytes(pickle.dumps({"not": "loaded"}))
    cases.append(({}, pickled, "runs arbitrary code"))
    two = tmp_path / "two"
    two.mkdir()
    sio.dump(classifier, two / "a.skops")
    sio.dump(classifier, two / "b.skops")
    cases.append(({}, two, r"exactly one model file .* found \['a.skops', 'b.skops'\]"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    cases.append(({}, empty, "found none"))
    cases.append(({}, tmp_path / "missing", "does not exist"))
    for kwargs, path, message in cases:
        with pytest.raises(ValidationError, match=message):
            mr.python.create_model("m", **kwargs).save(path)
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir()
    (onnx_dir / "model.onnx").write_bytes(b"")
    with pytest.raises(ValidationError, match=r"mr.sklearn.create_model takes .skops files"):
        mr.sklearn.create_model("m").save(onnx_dir)
    assert mr.list_models() == []  # nothing was registered by any refused save


def test_an_onnx_file_registers_through_mr_python(project: fti.Project, xy: Any, tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = xy
    model = LogisticRegression().fit(X.to_numpy(np.float32), y)
    model_dir = tmp_path / "onnx_model"
    model_dir.mkdir()
    onnx_model = to_onnx(model, X.to_numpy(np.float32)[:1], options={"zipmap": False})
    (model_dir / "model.onnx").write_bytes(onnx_model.SerializeToString())
    (model_dir / "notes.md").write_text("converted with skl2onnx")
    mv = project.model_registry.python.create_model(
        "onnx_clf", input_example=X.to_numpy(np.float32)[:3]
    ).save(model_dir)
    assert mv.flavor == "onnx" and "notes.md" in mv.artifacts
    predicted = mv.predict(X.to_numpy(np.float32))["predict"]
    np.testing.assert_array_equal(np.asarray(predicted).reshape(-1), model.predict(X.to_numpy(np.float32)))
