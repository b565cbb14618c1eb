"""The model registry on a real catalog (SQLite and PostgreSQL) and a real artifact directory."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import ConflictError, IntegrityError, NotFoundError, ValidationError
from fti.registry.model_registry import ModelRegistry
from fti.registry.signature import ModelSignature, TensorSpec


def _artifact_root(project: fti.Project) -> Path:
    return Path(project.settings.resolved_artifacts_url)


def test_register_get_load_and_signature(project: fti.Project, xy, classifier) -> None:
    X, _ = xy
    mr = project.model_registry
    with project.run("fraud-training", params={"C": 1.0}) as run:
        run.log_metrics({"auc": 0.93})
        mv = mr.register(
            "fraud", classifier, run=run, metrics={"auc": 0.93}, input_example=X.head(5), description="first"
        )
    assert (mv.name, mv.version, mv.flavor) == ("fraud", 1, "sklearn")
    assert mv.metrics == {"auc": 0.93} and mv.description == "first"
    assert mv.signature == ModelSignature(
        inputs=[
            TensorSpec("amount", "FP64", [-1]),
            TensorSpec("age", "FP64", [-1]),
            TensorSpec("hour", "FP64", [-1]),
        ],
        outputs=[TensorSpec("predict", "INT64", [-1]), TensorSpec("predict_proba", "FP64", [-1, 2])],
        classes=["0", "1"],
    )
    assert ModelSignature.from_dict(mv.signature.to_dict()) == mv.signature
    assert mv.artifact_prefix == f"models/{project.name}/fraud/1"
    assert (_artifact_root(project) / mv.artifact_prefix / "model.skops").is_file()
    loaded = mv.load()
    expected = classifier.predict_proba(X)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    # the one prediction path accepts a numpy array or a DataFrame in signature order
    out = mv.flavor_impl.predict(loaded, X.to_numpy())
    np.testing.assert_array_equal(out["predict_proba"], expected)
    np.testing.assert_array_equal(out["predict"], classifier.predict(X))
    pd.testing.assert_frame_equal(mv.input_example(), X.head(5))
    assert mr.get_model("fraud") == mv == mr.get_model("fraud", version=1) == mr.resolve("fraud")
    lineage = mv.lineage
    assert lineage.run is not None and lineage.run.id == run.id
    assert lineage.run.params == {"C": 1.0} and lineage.run.metrics == {"auc": 0.93}
    assert lineage.run.status == "finished"
    assert [m.version for m in run.models()] == [1]
    assert [m.version for m in mr.list_models(run=run)] == [1]


def test_versions_list_and_best_model(project: fti.Project, xy, classifier) -> None:
    X, _ = xy
    mr = project.model_registry
    for auc in (0.8, 0.95, 0.9):
        mr.register("fraud", classifier, metrics={"auc": auc, "loss": 1 - auc}, input_example=X.head(2))
    mr.register("churn", classifier)
    assert [(m.name, m.version) for m in mr.list_models()] == [
        ("churn", 1),
        ("fraud", 1),
        ("fraud", 2),
        ("fraud", 3),
    ]
    assert [m.version for m in mr.list_models("fraud")] == [1, 2, 3]
    assert mr.get_model("fraud").version == 3
    assert mr.get_best_model("fraud", metric="auc").version == 2
    assert mr.get_best_model("fraud", metric="loss", direction="min").version == 2
    assert mr.get_best_model("fraud", metric="auc", direction="min").version == 1
    with pytest.raises(NotFoundError, match="no version of model 'fraud' has metric 'f1'"):
        mr.get_best_model("fraud", metric="f1")
    with pytest.raises(ValidationError, match="direction must be"):
        mr.get_best_model("fraud", metric="auc", direction="up")
    churn = mr.get_model("churn")
    assert churn.signature.inputs == [] and churn.metrics == {}


def test_unknown_model_version_and_alias(project: fti.Project, classifier) -> None:
    mr = project.model_registry
    with pytest.raises(NotFoundError, match=r"model 'fraud' not found .*none registered yet"):
        mr.get_model("fraud")
    mr.register("fraud", classifier)
    with pytest.raises(NotFoundError, match=r"model 'nope' not found .*models: \['fraud'\]"):
        mr.get_model("nope")
    with pytest.raises(NotFoundError, match=r"model 'fraud' has no version 7 \(versions: \[1\]\)"):
        mr.get_model("fraud", version=7)
    with pytest.raises(NotFoundError, match="model 'fraud' has no alias 'production'"):
        mr.get_model("fraud@production")
    with pytest.raises(NotFoundError, match="no alias 'production'"):
        mr.delete_alias("fraud", "production")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        mr.set_alias("nope", 1, "production")
    with pytest.raises(ValidationError, match="either an alias"):
        mr.get_model("fraud@production", version=1)
    with pytest.raises(ValidationError, match="invalid model version"):
        mr.get_model("fraud", version=0)


def test_get_model_takes_every_form_of_model_reference(project: fti.Project, classifier) -> None:
    from fti.types import ModelRef

    mr = project.model_registry
    mr.register("fraud", classifier)
    mr.register("fraud", classifier)
    mr.set_alias("fraud", 1, "production")
    assert mr.get_model("fraud:1").version == mr.get_model("fraud", version=1).version == 1
    assert mr.get_model("fraud").version == mr.resolve("fraud:2").version == 2
    assert mr.resolve(ModelRef("fraud", alias="production")).version == 1
    with pytest.raises(NotFoundError, match=r"model 'fraud' has no version 7 \(versions: \[1, 2\]\)"):
        mr.get_model("fraud:7")
    with pytest.raises(ValidationError, match="either in the reference"):
        mr.get_model("fraud:1", version=2)
    with pytest.raises(ValidationError, match="must be an integer"):
        mr.resolve("fraud:latest")
    # a version beyond what the catalog column holds is bad input on both catalogs, not a
    # database error from deep inside (PostgreSQL's integer column overflows)
    with pytest.raises(ValidationError, match="from 1 to 2147483647"):
        mr.get_model("fraud", version=2**31)
    with pytest.raises(ValidationError, match="from 1 to 2147483647"):
        mr.get_model("fraud:99999999999")


@pytest.mark.parametrize("alias", ["Production", "prod env", "prod!", "", "x" * 64, "prod/1"])
def test_alias_names_outside_the_allowed_characters(
    sqlite_project: fti.Project, classifier, alias: str
) -> None:
    mr = sqlite_project.model_registry
    mr.register("fraud", classifier)
    with pytest.raises(ValidationError, match="invalid alias"):
        mr.set_alias("fraud", 1, alias)
    assert mr.aliases("fraud") == {}
    assert mr.alias_history("fraud") == []


def test_aliases_move_atomically_with_full_history(project: fti.Project, classifier) -> None:
    mr = project.model_registry
    for _ in range(3):
        mr.register("fraud", classifier)
    mr.set_alias("fraud", 1, "production")
    mr.set_alias("fraud", 2, "staging")
    mr.set_alias("fraud", 2, "production", reason="better auc")
    mr.set_alias("fraud", 2, "production")  # no change: no history row
    mr.set_alias("fraud", 1, "production", reason="rollback")
    mr.delete_alias("fraud", "staging")
    assert mr.aliases("fraud") == {"production": 1}
    assert mr.get_model("fraud@production").version == 1
    assert mr.get_model("fraud", version=1).aliases == ["production"]
    history = mr.alias_history("fraud")
    assert [(h.alias, h.from_version, h.to_version, h.reason) for h in history] == [
        ("production", None, 1, ""),
        ("staging", None, 2, ""),
        ("production", 1, 2, "better auc"),
        ("production", 2, 1, "rollback"),
        ("staging", 2, None, ""),
    ]
    assert all(h.changed_by and h.changed_at.tzinfo is not None for h in history)
    assert [h.to_version for h in mr.alias_history("fraud", "production")] == [1, 2, 1]
    # aliases are per model: another model may use the same alias name
    mr.register("churn", classifier)
    mr.set_alias("churn", 1, "production")
    assert mr.get_model("churn@production").name == "churn"
    assert mr.get_model("fraud@production").version == 1


def test_rollback_walks_the_alias_history_back(project: fti.Project, classifier) -> None:
    mr = project.model_registry
    for _ in range(3):
        mr.register("fraud", classifier)
    with pytest.raises(NotFoundError, match="no alias 'production' to roll back"):
        mr.rollback("fraud", reason="x")
    mr.set_alias("fraud", 1, "production")
    with pytest.raises(ConflictError, match="no earlier version to roll back to"):
        mr.rollback("fraud", reason="nothing before the first version")
    mr.set_alias("fraud", 2, "production", reason="retrained")
    mr.set_alias("fraud", 3, "production", reason="retrained again")
    mr.set_alias("fraud", 3, "staging")  # another alias's history does not count
    assert mr.rollback("fraud", reason="p99 doubled").version == 2
    assert mr.rollback("fraud", "production", reason="auc dropped").version == 1
    assert mr.aliases("fraud") == {"production": 1, "staging": 3}
    history = mr.alias_history("fraud", "production")
    assert [(h.from_version, h.to_version, h.reason) for h in history][-2:] == [
        (3, 2, "p99 doubled"),
        (2, 1, "auc dropped"),
    ]
    with pytest.raises(ConflictError, match="no earlier version"):
        mr.rollback("fraud", reason="again")
    assert mr.aliases("fraud")["production"] == 1


def test_rollback_bad_input_changes_nothing(sqlite_project: fti.Project, classifier) -> None:
    mr = sqlite_project.model_registry
    for _ in range(3):
        mr.register("fraud", classifier)
    mr.set_alias("fraud", 1, "production")
    mr.set_alias("fraud", 2, "production")
    for bad in ("", "   "):
        with pytest.raises(ValidationError, match="needs a reason"):
            mr.rollback("fraud", reason=bad)
    with pytest.raises(ValidationError, match="invalid alias"):
        mr.rollback("fraud", "Prod!", reason="x")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        mr.rollback("nope", reason="x")
    assert len(mr.alias_history("fraud")) == 2
    # the version it held before was deleted: say so rather than move to something else
    mr.set_alias("fraud", 3, "production")
    mr.delete_version("fraud", 2)
    with pytest.raises(ConflictError, match="held version 2 before, which was deleted"):
        mr.rollback("fraud", reason="x")
    assert mr.aliases("fraud") == {"production": 3}


def test_delete_version_needs_force_when_aliased(project: fti.Project, classifier) -> None:
    mr = project.model_registry
    mr.register("fraud", classifier)
    mv = mr.register("fraud", classifier)
    mr.set_alias("fraud", 2, "production")
    root = _artifact_root(project)
    with pytest.raises(ConflictError, match=r"alias\(es\) \['production'\].*force=True"):
        mv.delete()
    assert mr.get_model("fraud@production").version == 2  # nothing changed
    assert (root / mv.artifact_prefix / "model.skops").is_file()
    mv.delete(force=True)
    assert [m.version for m in mr.list_models("fraud")] == [1]
    assert not (root / mv.artifact_prefix).exists()
    assert mr.aliases("fraud") == {}
    last = mr.alias_history("fraud")[-1]
    assert (last.alias, last.from_version, last.to_version) == ("production", 2, None)
    assert "deleted" in last.reason
    # the next version number is not reused while a later version exists; here v2 was the last
    mr.get_model("fraud", version=1).delete()
    with pytest.raises(NotFoundError, match="has no versions"):
        mr.get_model("fraud")


def test_tampered_artifact_is_refused(project: fti.Project, classifier, tmp_path: Path) -> None:
    mv = project.model_registry.register("fraud", classifier)
    mv.verify()  # untouched: passes
    path = _artifact_root(project) / mv.artifact_prefix / "model.skops"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="does not match its recorded digest") as info:
        mv.load()
    assert info.value.details["expected_sha256"] == mv.artifacts["model.skops"]
    with pytest.raises(IntegrityError):
        mv.download(tmp_path / "out")
    assert not (tmp_path / "out" / "model.skops").exists()
    with pytest.raises(IntegrityError, match="does not match its recorded digest"):
        mv.verify()
    path.unlink()
    with pytest.raises(IntegrityError, match="is missing"):
        mv.load()
    with pytest.raises(IntegrityError, match="is missing"):
        mv.verify()


def test_download_writes_verified_files(sqlite_project: fti.Project, classifier, tmp_path: Path) -> None:
    mv = sqlite_project.model_registry.register("fraud", classifier)
    dest = mv.download(tmp_path / "dl")
    assert sorted(p.name for p in dest.iterdir()) == ["fti_model.json", "model.skops", "requirements.txt"]
    assert (dest / "model.skops").read_bytes() == (
        _artifact_root(sqlite_project) / mv.artifact_prefix / "model.skops"
    ).read_bytes()


def test_bad_registrations_write_nothing(project: fti.Project, classifier, xy) -> None:
    X, _ = xy
    mr: ModelRegistry = project.model_registry
    with pytest.raises(ValidationError, match=r"supported flavors are .*sklearn.*Pickled"):
        mr.register("fraud", {"not": "a model"})
    with pytest.raises(ValidationError, match="must be a finite number"):
        mr.register("fraud", classifier, metrics={"auc": math.nan})
    with pytest.raises(ValidationError, match="must be a finite number"):
        mr.register("fraud", classifier, metrics={"auc": math.inf})
    with pytest.raises(ValidationError, match="must be a finite number"):
        mr.register("fraud", classifier, metrics={"auc": "high"})
    with pytest.raises(ValidationError, match="invalid model name"):
        mr.register("Fraud Model", classifier)
    with pytest.raises(NotFoundError, match="run 999 does not exist"):
        mr.register("fraud", classifier, run=999)
    with pytest.raises(ValidationError, match="needs the feature_view"):
        mr.register("fraud", classifier, training_dataset_version=1)
    with pytest.raises(ValidationError, match="predicting on input_example"):
        mr.register("fraud", classifier, input_example=X[["amount"]].head(2))
    with pytest.raises(NotFoundError, match="none registered yet"):
        mr.list_models("fraud")
    assert mr.list_models() == []
    assert not (_artifact_root(project) / "models").exists()


def test_failed_artifact_write_leaves_nothing(sqlite_project: fti.Project, classifier) -> None:
    from fti.errors import BackendError

    root = _artifact_root(sqlite_project)
    root.mkdir(parents=True, exist_ok=True)
    (root / "models").write_text("a file where the models directory should be")
    mr = sqlite_project.model_registry
    with pytest.raises(BackendError, match="writing the artifacts of model 'fraud'"):
        mr.register("fraud", classifier)
    assert mr.list_models() == []
    (root / "models").unlink()
    assert mr.register("fraud", classifier).version == 1  # the version number was not used up


def test_concurrent_registrations_get_distinct_versions(project: fti.Project, classifier) -> None:
    from concurrent.futures import ThreadPoolExecutor

    mr = project.model_registry
    with ThreadPoolExecutor(max_workers=4) as pool:
        versions = sorted(pool.map(lambda i: mr.register("fraud", classifier).version, range(4)))
    assert versions == [1, 2, 3, 4]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda v: mr.set_alias("fraud", v, "production"), [1, 2, 3, 4]))
    history = mr.alias_history("fraud", "production")
    assert len(history) == 4 and history[0].from_version is None
    # every move starts where the previous one ended: no lost update
    assert all(a.to_version == b.from_version for a, b in itertools.pairwise(history))
    assert mr.get_model("fraud@production").version == history[-1].to_version
