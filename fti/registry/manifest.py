"""The manifest written beside a downloaded model, so the folder describes itself.

``mv.download()`` puts the version's files (digest-checked) in a directory together with
``fti_model.json`` — what MLflow's ``MLmodel`` file is to an MLflow model: the model's identity,
flavor and how to load it, signature, input example, metrics (current values and their
history), lineage (run with its params and metrics, feature view, training dataset, the offline
table versions it was read from), the digest of every file, and the Python requirements — and a
``requirements.txt`` with those requirements pinned, so ``pip install -r requirements.txt``
recreates an environment that loads it.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.registry.model_version import ModelVersion

if TYPE_CHECKING:
    _ConcretePath = Path
else:  # Path() is a PosixPath or WindowsPath; only those concrete classes can be subclassed
    _ConcretePath = type(Path())


class ModelDir(_ConcretePath):
    """The directory ``mv.download()`` returns: a :class:`~pathlib.Path` that also concatenates
    with strings, as hsml's string path does (``model_dir + "/model.json"``)."""

    def __add__(self, other: str) -> str:
        return str(self) + other

    def __radd__(self, other: str) -> str:
        return other + str(self)


MANIFEST = "fti_model.json"
REQUIREMENTS = "requirements.txt"
FORMAT_VERSION = 1

# the distributions each flavor needs to load and run its model
FLAVOR_PACKAGES: dict[str, tuple[str, ...]] = {
    "sklearn": ("scikit-learn", "skops", "numpy", "scipy"),
    "xgboost": ("xgboost", "numpy"),
    "lightgbm": ("lightgbm", "numpy"),
    "onnx": ("onnx", "onnxruntime", "numpy"),
    "pytorch": ("torch", "numpy"),
    "pyfunc": ("numpy",),
}


def requirements(mv: ModelVersion, run_packages: dict[str, str] | None) -> dict[str, str]:
    """``{distribution: version}`` the version needs: fti itself and its flavor's libraries, at the
    versions its training run recorded, else at the versions installed here."""
    import fti

    recorded = {k.lower(): v for k, v in (run_packages or {}).items()}
    out = {"fti": fti.__version__}
    for name in FLAVOR_PACKAGES.get(mv.flavor, ()):
        version = recorded.get(name.lower())
        if version is None:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        out[name] = version
    return out


def manifest(mv: ModelVersion) -> dict[str, Any]:
    """The manifest of ``mv`` as plain JSON values (lineage and metric history read live)."""
    lineage = mv.lineage
    packages = lineage.run.packages if lineage.run is not None else None
    return {
        "format_version": FORMAT_VERSION,
        "name": mv.name,
        "version": mv.version,
        "flavor": mv.flavor,
        "flavor_options": mv.flavor_options,
        "description": mv.description,
        "signature": mv.signature.to_dict(),
        "input_example": mv.example,
        "metrics": mv.metrics,
        "metric_history": {k: [p.to_dict() for p in v] for k, v in mv.metric_history().items()},
        "lineage": lineage.to_dict(),
        "requirements": requirements(mv, packages),
        "artifacts": mv.artifacts,
        "aliases": mv.aliases,
        "tags": mv.tags,
        "created_at": mv.created_at.isoformat(),
        "created_by": mv.created_by,
    }


def write(mv: ModelVersion, directory: Path) -> Path:
    """Write ``fti_model.json`` and ``requirements.txt`` into ``directory``; returns the manifest."""
    data = manifest(mv)
    path = directory / MANIFEST
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    if REQUIREMENTS not in mv.artifacts:  # a requirements file registered with the model wins
        lines = [f"{name}=={version}" for name, version in data["requirements"].items()]
        (directory / REQUIREMENTS).write_text("\n".join(lines) + "\n")
    return path
