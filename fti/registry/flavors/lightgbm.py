"""LightGBM flavor: ``Booster`` and the scikit-learn wrappers, saved in LightGBM's text format.

The text model holds the trees and feature names. For the scikit-learn wrappers the class name,
JSON-safe constructor params and class labels are stored in the catalog, and the wrapper is
rebuilt around the loaded booster — nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import IntegrityError, ValidationError
from fti.registry.flavors.base import (
    align_input,
    as_array,
    estimator_outputs,
    library_loaded,
    reject_options,
    require,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MODEL_FILE = "model.txt"
WRAPPERS = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")


class LightGBMFlavor:
    """``lightgbm.Booster`` and ``lightgbm.LGBMModel`` subclasses."""

    name = "lightgbm"

    def matches(self, model: object) -> bool:
        if not library_loaded("lightgbm"):
            return False
        import lightgbm as lgb

        return isinstance(model, lgb.Booster | lgb.LGBMModel)

    def save(self, model: Any, directory: Path, *, example: Any = None, **options: Any) -> dict[str, Any]:
        reject_options(self.name, options)
        lgb = require("lightgbm", "ml")

        if isinstance(model, lgb.Booster):
            (directory / MODEL_FILE).write_text(model.model_to_string(), encoding="utf-8")
            return {"file": MODEL_FILE, "kind": "booster"}
        cls = type(model).__name__
        if cls not in WRAPPERS or type(model).__module__.split(".")[0] != "lightgbm":
            raise ValidationError(
                f"LightGBM wrapper {type(model).__qualname__} is not supported; use one of {', '.join(WRAPPERS)} "
                "or register model.booster_"
            )
        if not getattr(model, "fitted_", False):
            raise ValidationError(f"the {cls} model is not fitted; fit it before registering")
        if callable(getattr(model, "_objective", None)):
            raise ValidationError("LightGBM models with a custom objective function cannot be saved safely")
        (directory / MODEL_FILE).write_text(model.booster_.model_to_string(), encoding="utf-8")
        params = {k: v for k, v in model.get_params().items() if _json_safe(v)}
        saved: dict[str, Any] = {
            "file": MODEL_FILE,
            "kind": "sklearn",
            "class": cls,
            "params": params,
            "objective": model._objective,
            "fitted_with_feature_names": bool(getattr(model, "_fitted_with_feature_names", False)),
        }
        if hasattr(model, "classes_"):
            saved["classes"] = model.classes_.tolist()
        return saved

    def load(self, directory: Path, options: dict[str, Any]) -> Any:
        lgb = require("lightgbm", "ml")

        booster = lgb.Booster(model_str=(directory / options["file"]).read_text(encoding="utf-8"))
        if options.get("kind") == "booster":
            return booster
        cls = options.get("class")
        if cls not in WRAPPERS:
            raise IntegrityError(f"stored LightGBM wrapper class {cls!r} is not one of {', '.join(WRAPPERS)}")
        model = getattr(lgb, cls)(**options.get("params", {}))
        # Rebuild the fitted state LightGBM's own fit() sets (lightgbm>=4,<5).
        model._Booster = booster
        model._n_features = booster.num_feature()
        model._n_features_in = booster.num_feature()
        model._objective = options.get("objective")
        model._fitted_with_feature_names = bool(options.get("fitted_with_feature_names"))
        if "classes" in options:
            import numpy as np
            from lightgbm.sklearn import _LGBMLabelEncoder  # type: ignore[attr-defined]

            model._le = _LGBMLabelEncoder().fit(np.asarray(options["classes"]))
            model._classes = model._le.classes_
            model._n_classes = len(model._classes)
            model._class_map = dict(
                zip(model._le.classes_, model._le.transform(model._le.classes_), strict=True)
            )
        model.fitted_ = True
        return model

    def predict(self, model: Any, X: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
        lgb = require("lightgbm", "ml")

        if isinstance(model, lgb.Booster):
            import pandas as pd

            data = X if isinstance(X, pd.DataFrame) else align_input(X, None)
            return {"predict": as_array(model.predict(data))}
        names = model.feature_name_ if getattr(model, "_fitted_with_feature_names", False) else None
        return estimator_outputs(model, X, names)


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list | tuple):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False
