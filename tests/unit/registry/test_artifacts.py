"""Extra model-version artifacts (``mr.register(..., artifacts={...})``): stored with the model,
digest-checked on every read, listed in ``mv.artifacts``, refused when named badly."""

from __future__ import annotations

from pathlib import Path

import pytest

import fti
from fti.errors import IntegrityError, NotFoundError, ValidationError

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _root(project: fti.Project) -> Path:
    return Path(project.settings.resolved_artifacts_url)


def test_extra_files_are_stored_listed_and_read_back(
    project: fti.Project, classifier, tmp_path: Path
) -> None:
    image = tmp_path / "cm.png"
    image.write_bytes(PNG)
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on the January data\n")
    mv = project.model_registry.register(
        "fraud", classifier, artifacts={"confusion_matrix.png": image, "reports/notes.txt": str(notes)}
    )
    assert set(mv.artifacts) == {"model.skops", "confusion_matrix.png", "reports/notes.txt"}
    again = project.model_registry.get_model("fraud", version=mv.version)
    assert again.read_artifact("confusion_matrix.png") == PNG
    assert again.read_artifact("reports/notes.txt") == b"trained on the January data\n"
    image.write_bytes(b"changed later")  # the stored copy is independent of the source file
    assert again.read_artifact("confusion_matrix.png") == PNG
    again.verify()
    out = again.download(tmp_path / "out")
    assert (out / "confusion_matrix.png").read_bytes() == PNG
    assert again.predict(_x(project, classifier))["predict"].shape == (3,)  # the model still loads
    with pytest.raises(NotFoundError, match=r"no artifact 'roc.png'.*confusion_matrix.png"):
        again.read_artifact("roc.png")


def _x(project: fti.Project, classifier):  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.DataFrame([[0.1, 0.2, 0.3]] * 3, columns=classifier.feature_names_in_)


def test_a_tampered_extra_file_is_refused_on_read_and_verify(
    sqlite_project: fti.Project, classifier, tmp_path: Path
) -> None:
    image = tmp_path / "cm.png"
    image.write_bytes(PNG)
    mv = sqlite_project.model_registry.register("fraud", classifier, artifacts={"cm.png": image})
    stored = _root(sqlite_project) / mv.artifact_prefix / "cm.png"
    stored.write_bytes(PNG[:-1] + b"\x00")
    with pytest.raises(IntegrityError, match="does not match its recorded digest"):
        mv.read_artifact("cm.png")
    with pytest.raises(IntegrityError):
        mv.verify()
    stored.unlink()
    with pytest.raises(IntegrityError, match="is missing"):
        mv.read_artifact("cm.png")


@pytest.mark.parametrize(
    ("artifacts", "message"),
    [
        ({"../escape.png": "F"}, "invalid artifact name '../escape.png'"),
        ({"/abs.png": "F"}, "invalid artifact name"),
        ({".hidden": "F"}, "invalid artifact name"),
        ({"a//b": "F"}, "invalid artifact name"),
        ({"": "F"}, "invalid artifact name"),
        ({"model.skops": "F"}, "is used by the model's own files"),
        ({"cm.png": "missing.png"}, "is not a file"),
        ({"cm.png": 3}, "is not a file"),
        (["cm.png"], "artifacts must map names to file paths"),
    ],
)
def test_bad_artifacts_register_nothing(
    sqlite_project: fti.Project, classifier, tmp_path: Path, artifacts: object, message: str
) -> None:
    real = tmp_path / "f.png"
    real.write_bytes(PNG)
    if isinstance(artifacts, dict):
        artifacts = {
            k: (real if v == "F" else tmp_path / v if isinstance(v, str) else v) for k, v in artifacts.items()
        }
    mr = sqlite_project.model_registry
    with pytest.raises(ValidationError, match=message):
        mr.register("fraud", classifier, artifacts=artifacts)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        mr.get_model("fraud")
    assert not (_root(sqlite_project) / "models").exists() or not any(
        (_root(sqlite_project) / "models").rglob("*.png")
    )
