"""Python-function flavor: custom predict code referenced as ``module:function`` plus files.

WARNING: this flavor EXECUTES CODE. Loading a ``pyfunc`` model version imports the referenced
module (running its top-level code) and ``predict`` calls the function. Only the reference string
and the artifact files are stored — never pickled objects — so the code that runs is whatever that
module contains in the loading environment. Register and load only code you trust, and install the
same package version wherever the model is loaded.

The function is called as ``function(X, artifacts)`` where ``X`` is a pandas DataFrame (or 2-D
numpy array) of the signature's inputs and ``artifacts`` maps each artifact name to a local
``Path``; it returns an array (``predict``) or a dict of named arrays.
"""

from __future__ import annotations

import importlib
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError
from fti.registry.flavors.base import as_array, reject_options

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


@dataclass(frozen=True)
class PythonModel:
    """A custom model: a ``"package.module:function"`` reference and named artifact files.

    Loading and predicting IMPORTS AND RUNS that code (see the module docstring).

    Attributes:
        function: ``"package.module:function"``; called as ``function(X, artifacts)``.
        artifacts: ``{name: local file path}`` stored with the version and passed back as paths.
    """

    function: str
    artifacts: Mapping[str, str | Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.function, str) or not _REFERENCE.match(self.function):
            raise ValidationError(
                f"function must be a 'package.module:function' reference, got {self.function!r}"
            )
        for name, path in self.artifacts.items():
            if not isinstance(name, str) or not _ARTIFACT_NAME.match(name):
                raise ValidationError(f"artifact names use letters, digits, '_', '-', '.'; got {name!r}")
            if not Path(path).is_file():
                raise ValidationError(f"artifact {name!r} is not a file: {str(path)!r}")

    def resolve(self) -> Callable[..., Any]:
        """Import the module and return the function (this executes the module's code)."""
        module_name, attr = self.function.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise NotFoundError(
                f"cannot import {module_name!r} for pyfunc model {self.function!r}: {exc}; install the "
                "package that defines it"
            ) from exc
        function = getattr(module, attr, None)
        if not callable(function):
            raise NotFoundError(f"{self.function!r}: module {module_name!r} has no function {attr!r}")
        return function  # type: ignore[no-any-return]

    def predict(self, X: Any) -> Any:
        """Call the function on ``X`` with the artifact paths."""
        return self.resolve()(X, {name: Path(path) for name, path in self.artifacts.items()})


class PyFuncFlavor:
    """:class:`PythonModel` objects. Executes the referenced code on load and predict."""

    name = "pyfunc"

    def matches(self, model: object) -> bool:
        return isinstance(model, PythonModel)

    def save(self, model: Any, directory: Path, *, example: Any = None, **options: Any) -> dict[str, Any]:
        reject_options(self.name, options)
        model.resolve()  # fail now, not at load time, when the reference is wrong
        files: dict[str, str] = {}
        for name, path in model.artifacts.items():
            relative = f"artifacts/{name}"
            (directory / "artifacts").mkdir(exist_ok=True)
            shutil.copyfile(path, directory / relative)
            files[name] = relative
        return {"function": model.function, "artifacts": files}

    def load(self, directory: Path, options: dict[str, Any]) -> Any:
        # The download directory is temporary; the artifacts must outlive load().
        keep = Path(tempfile.mkdtemp(prefix="fti-pyfunc-"))
        paths = {}
        for name, relative in options.get("artifacts", {}).items():
            target = keep / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(directory / relative, target)
            paths[name] = target
        model = PythonModel(options["function"], paths)
        model.resolve()
        return model

    def predict(self, model: Any, X: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
        result = model.predict(X)
        if isinstance(result, Mapping):
            return {str(k): as_array(v) for k, v in result.items()}
        return {"predict": as_array(result)}
