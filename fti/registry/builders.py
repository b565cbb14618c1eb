"""Hopsworks-style registration from a directory: ``mr.python.create_model(...).save(model_dir)``.

hsml users write the model into a directory and register the directory::

    model = mr.python.create_model("iris", version=1, metrics={"accuracy": 0.97},
                                   model_schema=ModelSchema(Schema(X_train), Schema(y_train)),
                                   input_example=X_train.sample())
    model.save("iris_model")          # a directory (or a single file)

``create_model`` takes hsml's arguments and is lazy, as in hsml; ``save`` finds the one model file
in the directory, loads it without running code and registers it like ``mr.register`` (flavor,
signature, digests), every other file of the directory stored with it as an artifact (a confusion
matrix, a README, requirements). Model files are recognised by format, from their content where
the suffix is shared with other files:

=================  ==================================================  ========================
framework          model file                                          loaded by
=================  ==================================================  ========================
``mr.sklearn``     ``.skops``                                          skops (trusted types)
``mr.xgboost``     ``.ubj``, ``.json`` holding an XGBoost ``learner``  ``xgboost`` (no code)
``mr.lightgbm``    ``.txt`` starting with LightGBM's ``tree`` line     ``lightgbm`` (no code)
``mr.torch``       ``.pt``/``.pth``/``.torchscript`` TorchScript zip   ``torch.jit.load``
``mr.tensorflow``  ``.onnx`` (a Keras model converted with tf2onnx)     ONNX
``mr.python``      any of the above
=================  ==================================================  ========================

A pickle or joblib file (and a ``.pt`` written by ``torch.save``, which is a pickle) is refused
with the way out: loading a pickle runs arbitrary code, which fti never does. Hidden files
(``.DS_Store``, ``.ipynb_checkpoints/``) are left out.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fti.errors import FtiError, ValidationError

if TYPE_CHECKING:
    from fti.registry.model_registry import ModelRegistry
    from fti.registry.model_version import ModelVersion
    from fti.registry.schema import ModelSchema

UNSAFE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".dill", ".cloudpickle")
TORCH_SUFFIXES = (".pt", ".pth", ".torchscript")
# the model formats each of hsml's frameworks takes (python: any)
FORMATS = {
    "sklearn": ("skops",),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
    "torch": ("torchscript",),
    "tensorflow": ("onnx",),
    "python": ("skops", "onnx", "xgboost", "lightgbm", "torchscript"),
}
FILES = {
    "skops": ".skops",
    "onnx": ".onnx",
    "xgboost": ".ubj or XGBoost .json",
    "lightgbm": "LightGBM .txt",
    "torchscript": "TorchScript .pt",
}
HINTS = (
    "Save a scikit-learn model with skops (skops.io.dump(model, 'model.skops')), XGBoost with "
    "model.save_model('model.json'), LightGBM with booster.save_model('model.txt'), PyTorch with "
    "torch.jit.save(torch.jit.script(model), 'model.pt'), or register the fitted object itself with "
    "mr.register(name, model)"
)


class ModelBuilder:
    """A model about to be registered (what hsml's ``create_model`` returns); ``save`` registers it.

    As in hsml, the object is the registered model once saved: its other attributes (``version``,
    ``flavor``, ``download()``...) are those of the new :class:`ModelVersion`.
    """

    def __init__(self, registry: ModelRegistry, framework: str, name: str, options: dict[str, Any]) -> None:
        self._registry = registry
        self.framework = framework
        self.name = name
        self._options = options
        self._saved: ModelVersion | None = None

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_") or self._saved is None:
            raise AttributeError(
                f"{type(self).__name__} has no attribute {attribute!r}"
                + (
                    ""
                    if attribute.startswith("_")
                    else "; the model is registered (and has its version's attributes) after .save(model_dir)"
                )
            )
        return getattr(self._saved, attribute)

    def save(
        self,
        model_path: str | os.PathLike[str],
        await_registration: float = 480,
        keep_original_files: bool = False,
        *,
        trusted_types: list[str] | None = None,
    ) -> ModelVersion:
        """Register the model file in ``model_path`` (a directory or the file itself).

        Args:
            model_path: The directory holding one model file and any other files to keep.
            await_registration: hsml's wait for the registration; fti registers synchronously.
            keep_original_files: hsml's option to keep the local files; fti never removes them.
            trusted_types: Types outside scikit-learn/numpy/scipy a ``.skops`` file may construct.

        Returns:
            The new model version.

        Raises:
            ValidationError: no model file, several, a pickle/joblib file, a format this
                framework does not take, or a file name that cannot be an artifact name.
            AlreadyExistsError: ``create_model(version=...)`` names an existing version.
        """
        root = Path(model_path)
        if not root.exists():
            raise ValidationError(
                f"model_path {str(root)!r} does not exist; pass the directory the model was saved in"
            )
        files = [root] if root.is_file() else _visible_files(root)
        base = root.parent if root.is_file() else root
        kinds = {p: _format(p) for p in files}
        unsafe = [p for p, kind in kinds.items() if kind == "pickle"]
        if unsafe:
            raise ValidationError(
                f"{[p.name for p in unsafe]} would be loaded with pickle, which runs arbitrary code: fti never "
                f"does. {HINTS}"
            )
        models = [p for p, kind in kinds.items() if kind is not None]
        if len(models) != 1:
            found = [p.relative_to(base).as_posix() for p in models] or "none"
            raise ValidationError(
                f"model_path needs exactly one model file ({_accepted('python')}), found {found} "
                f"in {str(root)!r}"
            )
        model_file = models[0]
        kind = cast(str, kinds[model_file])
        if kind not in FORMATS[self.framework]:
            raise ValidationError(
                f"mr.{self.framework}.create_model takes {_accepted(self.framework)} files, got "
                f"{model_file.name!r}; use mr.python.create_model for other formats"
            )
        try:
            model, types = _load(model_file, kind, trusted_types)
        except FtiError:
            raise
        except Exception as exc:  # the libraries raise their own errors for a damaged file
            raise ValidationError(f"{model_file.name} is not a readable {FILES[kind]} model: {exc}") from exc
        artifacts = {p.relative_to(base).as_posix(): p for p in files if p != model_file}
        # stored under the user's file name (read back as hsml users do) in the format it came in
        options: dict[str, Any] = {**self._options, "save_options": {"file": model_file.name}}
        if kind == "xgboost":
            options["save_options"]["format"] = model_file.suffix.lower().lstrip(".")
        self._saved = self._registry.register(
            self.name, model, artifacts=artifacts, trusted_types=types, **options
        )
        return self._saved


class Framework:
    """``mr.python``, ``mr.sklearn``, ``mr.xgboost``...: hsml's per-framework model factories."""

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
        model_schema: ModelSchema | None = None,
        feature_view: Any = None,
        training_dataset_version: int | None = None,
    ) -> ModelBuilder:
        """A model to register with ``.save(model_dir)`` (lazy: nothing is written before ``save``).

        Arguments are hsml's, with :meth:`ModelRegistry.register`'s meaning: ``version`` an
        explicit version number (an existing one is an error at ``save``; default: the next),
        ``model_schema`` a :class:`fti.registry.schema.ModelSchema` stored in the signature.
        """
        options = {
            "version": version,
            "metrics": metrics,
            "description": "" if description is None else description,
            "input_example": input_example,
            "model_schema": model_schema,
            "feature_view": feature_view,
            "training_dataset_version": training_dataset_version,
        }
        return ModelBuilder(self._registry, self.framework, name, options)


class Frameworks:
    """hsml's framework entry points of the model registry (``mr.python.create_model(...)``)."""

    def _framework(self, name: str) -> Framework:
        return Framework(cast("ModelRegistry", self), name)

    @property
    def python(self) -> Framework:
        """Any safe model format (see :mod:`fti.registry.builders`)."""
        return self._framework("python")

    @property
    def sklearn(self) -> Framework:
        """A directory holding a ``.skops`` file."""
        return self._framework("sklearn")

    @property
    def xgboost(self) -> Framework:
        """A directory holding an XGBoost ``.json`` or ``.ubj`` model (``model.save_model(...)``)."""
        return self._framework("xgboost")

    @property
    def lightgbm(self) -> Framework:
        """A directory holding a LightGBM text model (``booster.save_model("model.txt")``)."""
        return self._framework("lightgbm")

    @property
    def torch(self) -> Framework:
        """A directory holding a TorchScript file (``torch.jit.save``)."""
        return self._framework("torch")

    @property
    def tensorflow(self) -> Framework:
        """A directory holding an ONNX file (a Keras model converted with tf2onnx)."""
        return self._framework("tensorflow")


def _visible_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def _accepted(framework: str) -> str:
    return ", ".join(FILES[kind] for kind in FORMATS[framework])


def _format(path: Path) -> str | None:
    """The model format of a file (from its content where the suffix is shared), "pickle", or None."""
    suffix = path.suffix.lower()
    if suffix in UNSAFE_SUFFIXES:
        return "pickle"
    if suffix in (".skops", ".onnx"):
        return suffix[1:]
    if suffix == ".ubj":
        return "xgboost"
    if suffix in TORCH_SUFFIXES:
        # TorchScript is a zip with the module's code/ and tensors; torch.save writes a pickle
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if any("/code/" in name for name in archive.namelist()):
                    return "torchscript"
        return "pickle"
    # sniff the first bytes only: a large JSON or text artifact is never read whole
    with path.open("rb") as f:
        head = f.read(64)
    if suffix == ".json":  # XGBoost writes {"learner": {...}, "version": [...]}
        return "xgboost" if b"".join(head.split()).startswith(b'{"learner":{') else None
    if suffix == ".txt":  # LightGBM's text format starts with the line "tree"
        return "lightgbm" if head.startswith((b"tree\n", b"tree\r\n")) else None
    return None


def _load(path: Path, kind: str, trusted_types: list[str] | None) -> tuple[Any, list[str] | None]:
    """The model object in ``path`` (no code runs) and the skops types it needs trusted."""
    from fti.registry.flavors.base import require

    if kind == "onnx":
        onnx = require("onnx", "ml")
        return onnx.load(str(path)), None
    if kind == "xgboost":
        xgb = require("xgboost", "ml")
        booster = xgb.Booster(model_file=str(path))
        # the scikit-learn wrappers record their kind; their wrapper keeps predict_proba and classes
        wrapper = json.loads(booster.attributes().get("scikit_learn") or "{}").get("_estimator_type")
        cls = {"classifier": xgb.XGBClassifier, "regressor": xgb.XGBRegressor}.get(wrapper)
        if cls is None:
            return booster, None
        model = cls()
        model.load_model(str(path))
        return model, None
    if kind == "lightgbm":
        lgb = require("lightgbm", "ml")
        return lgb.Booster(model_file=str(path)), None
    if kind == "torchscript":
        from fti.registry.flavors.pytorch import PyTorchFlavor

        return PyTorchFlavor().load(path.parent, {"file": path.name}), None
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
