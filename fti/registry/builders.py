"""Hopsworks-style registration from a directory: ``mr.python.create_model(...).save(model_dir)``.

hsml users write the model into a directory and register the directory::

    model = mr.sklearn.create_model("iris", metrics={"accuracy": 0.97}, input_example=X.head(3))
    model.save("iris_model")          # a directory (or a single file)

``create_model`` is lazy, as in hsml; ``save`` finds the one model file in the directory, loads it
without running code and registers it like ``mr.register`` (flavor, signature from the input
example, digests), every other file of the directory stored with it as an artifact (a
confusion matrix, a README, requirements). Model files are recognised by their format:
``.skops`` (scikit-learn, with skops' trusted-types check) and ``.onnx``. A pickle or joblib file
is refused with the way out: saving and loading pickles runs arbitrary code, which fti never
does. Hidden files (``.DS_Store``, ``.ipynb_checkpoints/``) are left out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.registry.model_registry import ModelRegistry
    from fti.registry.model_version import ModelVersion

UNSAFE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".dill", ".cloudpickle", ".pt", ".pth")
# model file suffix -> the frameworks (hsml's names) whose create_model accepts it
MODEL_SUFFIXES = {".skops": ("python", "sklearn"), ".onnx": ("python",)}


class ModelBuilder:
    """A model about to be registered (what hsml's ``create_model`` returns); ``save`` registers it."""

    def __init__(self, registry: ModelRegistry, framework: str, name: str, options: dict[str, Any]) -> None:
        self._registry = registry
        self.framework = framework
        self.name = name
        self._options = options

    def save(
        self, model_path: str | os.PathLike[str], *, trusted_types: list[str] | None = None
    ) -> ModelVersion:
        """Register the model file in ``model_path`` (a directory or the file itself).

        Args:
            model_path: The directory holding one model file and any other files to keep.
            trusted_types: Types outside scikit-learn/numpy/scipy a ``.skops`` file may construct.

        Returns:
            The new model version.

        Raises:
            ValidationError: no model file, several, a pickle/joblib file, a format this
                framework does not take, or a file name that cannot be an artifact name.
        """
        root = Path(model_path)
        if not root.exists():
            raise ValidationError(
                f"model_path {str(root)!r} does not exist; pass the directory the model was saved in"
            )
        files = [root] if root.is_file() else _visible_files(root)
        base = root.parent if root.is_file() else root
        unsafe = [p for p in files if p.suffix.lower() in UNSAFE_SUFFIXES]
        if unsafe:
            raise ValidationError(
                f"{[p.name for p in unsafe]} would be loaded with pickle, which runs arbitrary code: fti never "
                "does. Save a scikit-learn model with skops (skops.io.dump(model, 'model.skops')) or ONNX, or "
                "register the fitted object itself with mr.register(name, model)"
            )
        models = [p for p in files if p.suffix.lower() in MODEL_SUFFIXES]
        if len(models) != 1:
            found = [p.relative_to(base).as_posix() for p in models] or "none"
            raise ValidationError(
                f"model_path needs exactly one model file ({', '.join(MODEL_SUFFIXES)}), found {found} "
                f"in {str(root)!r}"
            )
        model_file = models[0]
        if self.framework not in MODEL_SUFFIXES[model_file.suffix.lower()]:
            raise ValidationError(
                f"mr.{self.framework}.create_model takes {_suffixes(self.framework)} files, got "
                f"{model_file.name!r}; use mr.python.create_model for other formats"
            )
        model, types = _load(model_file, trusted_types)
        artifacts = {p.relative_to(base).as_posix(): p for p in files if p != model_file}
        return self._registry.register(
            self.name, model, artifacts=artifacts, trusted_types=types, **self._options
        )


class Framework:
    """``mr.python`` / ``mr.sklearn``: hsml's per-framework model factories."""

    def __init__(self, registry: ModelRegistry, framework: str) -> None:
        self._registry = registry
        self.framework = framework

    def create_model(
        self,
        name: str,
        version: int | None = None,
        metrics: dict[str, float] | None = None,
        description: str | None = None,
        input_example: Any = None,
        model_schema: Any = None,
        feature_view: Any = None,
        training_dataset_version: int | None = None,
    ) -> ModelBuilder:
        """A model to register with ``.save(model_dir)`` (lazy: nothing is written before ``save``).

        Arguments are hsml's. fti numbers versions itself and infers the signature from
        ``input_example``, so ``version`` and ``model_schema`` must be left out.
        """
        if version is not None:
            raise ValidationError("fti numbers model versions itself (the next one); drop version=")
        if model_schema is not None:
            raise ValidationError(
                "fti infers the model's signature from input_example (and the feature view); drop model_schema="
            )
        options = {
            "metrics": metrics,
            "description": description or "",
            "input_example": input_example,
            "feature_view": feature_view,
            "training_dataset_version": training_dataset_version,
        }
        return ModelBuilder(self._registry, self.framework, name, options)


def _visible_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def _suffixes(framework: str) -> str:
    return ", ".join(s for s, frameworks in MODEL_SUFFIXES.items() if framework in frameworks)


def _load(path: Path, trusted_types: list[str] | None) -> tuple[Any, list[str] | None]:
    """The model object in ``path`` (no code runs) and the skops types it needs trusted."""
    if path.suffix.lower() == ".onnx":
        import onnx

        return onnx.load(str(path)), None
    from fti.registry.flavors.sklearn import TRUSTED_MODULES, _skops_io

    sio = _skops_io()
    data = path.read_bytes()
    needed = sorted(sio.get_untrusted_types(data=data))
    allowed = set(trusted_types or [])
    refused = [t for t in needed if t not in allowed and not t.startswith(TRUSTED_MODULES)]
    if refused:
        raise ValidationError(
            f"{path.name} needs types outside scikit-learn/numpy/scipy: {refused}; if you trust them, pass "
            f"save(..., trusted_types={refused!r})",
            details={"untrusted_types": refused},
        )
    return sio.loads(data, trusted=needed), trusted_types
