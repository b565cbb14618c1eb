"""scikit-learn flavor (estimators and pipelines), saved with ``skops`` — never pickle.

skops stores an object graph and refuses to construct any type that is not explicitly trusted.
The trusted-types list is computed at SAVE time with ``skops.io.get_untrusted_types`` on the bytes
fti just produced from the user's in-memory object, checked against an allowlist of library
modules (scikit-learn, numpy, scipy...; anything else must be named in ``trusted_types=``), and
stored in the catalog. At load, the types in the file are listed again (without constructing
anything) and must all be in the stored list; only then is ``skops.io.loads`` called with exactly
that list. A file swapped for one that needs other types is refused before any of its code runs
(and its digest would not match either).
"""

from __future__ import annotations

import sys
import threading
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import IntegrityError, ValidationError
from fti.registry.flavors.base import (
    estimator_outputs,
    library_loaded,
    reject_options,
    require,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MODEL_FILE = "model.skops"

# Module prefixes whose types may be trusted without the user naming them.
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "skops.", "builtins.", "collections.", "_codecs.")


class SklearnFlavor:
    """scikit-learn estimators, pipelines and meta-estimators."""

    name = "sklearn"

    def matches(self, model: object) -> bool:
        if not library_loaded("sklearn"):
            return False
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator) and hasattr(model, "predict")

    def save(
        self,
        model: Any,
        directory: Path,
        *,
        example: Any = None,
        trusted_types: list[str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        reject_options(self.name, options)
        sio = _skops_io()

        _check_fitted(model)
        data = sio.dumps(model)
        needed = sorted(sio.get_untrusted_types(data=data))
        allowed = set(trusted_types or [])
        refused = [t for t in needed if t not in allowed and not t.startswith(TRUSTED_MODULES)]
        if refused:
            raise ValidationError(
                f"the model contains types outside scikit-learn/numpy/scipy that skops would have to "
                f"trust at load time: {refused}. If you wrote them and trust them, pass "
                f"trusted_types={refused!r} to register()",
                details={"untrusted_types": refused},
            )
        (directory / MODEL_FILE).write_bytes(data)
        return {"file": MODEL_FILE, "trusted_types": needed, "class": _qualname(model)}

    def load(self, directory: Path, options: dict[str, Any]) -> Any:
        sio = _skops_io()

        data = (directory / options.get("file", MODEL_FILE)).read_bytes()
        trusted = list(options.get("trusted_types", []))
        untrusted = set(sio.get_untrusted_types(data=data))
        unexpected = sorted(untrusted - set(trusted))
        if unexpected and _walk_skipped:  # skops' default list lacks scikit-learn's estimators
            unexpected = [t for t in unexpected if not _is_estimator(t)]
            trusted += sorted(untrusted - set(trusted) - set(unexpected))
        if unexpected:
            raise IntegrityError(
                f"the stored scikit-learn model needs types that were not trusted when it was registered: "
                f"{unexpected}; refusing to load it",
                details={"untrusted_types": unexpected},
            )
        return sio.loads(data, trusted=trusted)

    def predict(self, model: Any, X: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
        names = getattr(model, "feature_names_in_", None)
        return estimator_outputs(model, X, names)


_lean = False  # set by skip_estimator_walk(): fti's own model-serving processes
_walk_skipped = False  # skops.io was imported without listing scikit-learn's estimators


def skip_estimator_walk() -> None:
    """Have this process import skops without its walk of every scikit-learn module.

    At import, skops lists scikit-learn's estimators (``sklearn.utils.all_estimators()``) to
    trust them by default, importing every public scikit-learn module: a quarter of loading a
    HistGradientBoosting model in a fresh process (0.5 of 2.1 CPU seconds, 14 MB).
    The model server (a process of fti's own that never registers models) calls this at start:
    skops then trusts no estimator by default, and :meth:`SklearnFlavor.load` trusts a type the
    stored list lacks only when it is such an estimator, as that walk would have found it (a
    public, concrete ``BaseEstimator`` subclass of scikit-learn, imported from its module).
    Anything else is refused as before. Other processes keep skops' own list: a user's code
    calling skops must see it unchanged.
    """
    global _lean
    _lean = True


def _skops_io() -> Any:
    """``skops.io``, imported without importing PyTorch.

    At import, skops lists scikit-learn's estimators with ``sklearn.utils.all_estimators()``,
    whose package walk imports ``sklearn.externals.array_api_compat.torch`` and with it PyTorch
    when it is installed (about 250 MB and a second for a server that serves one scikit-learn
    model). No estimator lives there, and the walk skips packages that fail to import, so for the
    duration of the import, in this thread only, importing ``torch`` fails. After
    :func:`skip_estimator_walk` there is no walk at all.
    """
    global _walk_skipped
    if "skops.io" in sys.modules or "torch" in sys.modules:
        return require("skops.io", "ml")
    if _lean:
        import sklearn.utils

        walk = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = lambda type_filter=None: []  # what skops imports by name
        try:
            module = require("skops.io", "ml")
        finally:
            sklearn.utils.all_estimators = walk
        _walk_skipped = True
        return module
    blocker = _RefuseImport("torch", threading.get_ident())
    sys.meta_path.insert(0, blocker)
    try:
        return require("skops.io", "ml")
    finally:
        sys.meta_path.remove(blocker)


def _is_estimator(type_name: str) -> bool:
    """Whether ``type_name`` (``module.Class``) is a scikit-learn estimator as
    ``sklearn.utils.all_estimators()`` counts them: a public class, neither ``BaseEstimator``
    itself nor abstract, subclassing it, defined in a ``sklearn.`` module outside tests and
    vendored code, and exported by the public module it lives under (``sklearn.utils._mocking``'s
    test estimators are not). Its modules are imported here: the load would import them anyway."""
    import importlib

    from sklearn.base import BaseEstimator

    module, _, name = type_name.rpartition(".")
    parts = module.split(".")
    if parts[0] != "sklearn" or name.startswith("_") or name == "BaseEstimator":
        return False
    if any(part in ("tests", "externals") for part in parts):  # modules the walk skips
        return False
    # the walk collects the classes of public modules: the one before the first private part
    public = ".".join(parts[: next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))])
    try:
        found: object = getattr(importlib.import_module(module), name, None)
        exported = getattr(importlib.import_module(public), name, None)
    except ImportError:
        return False
    if found is not exported:  # defined in a private module that no public one exports
        return False
    if not isinstance(found, type):
        return False
    return (
        found.__module__ == module
        and issubclass(found, BaseEstimator)
        and not getattr(found, "__abstractmethods__", None)
    )


class _RefuseImport:
    """A meta-path finder that makes importing one package fail in one thread."""

    def __init__(self, package: str, thread: int) -> None:
        self.package = package
        self.thread = thread

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name.split(".")[0] == self.package and threading.get_ident() == self.thread:
            raise ImportError(f"{self.package} is not imported while skops lists estimators", name=name)
        return None


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise ValidationError(
            f"the {type(model).__name__} model is not fitted; fit it before registering"
        ) from exc
    except TypeError:  # not an estimator check_is_fitted understands; predict will tell
        pass


def _qualname(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"
