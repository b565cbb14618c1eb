"""XGBoost flavor: ``Booster`` and the scikit-learn wrappers, saved as UBJ (default) or JSON.

XGBoost's own model format holds the trees, the learner parameters and (for the scikit-learn
wrappers) the class labels and feature names; loading it constructs no Python object from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import IntegrityError, ValidationError
from fti.registry.flavors.base import (
    as_array,
    estimator_outputs,
    library_loaded,
    reject_options,
    require,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMATS = ("ubj", "json")
# the scikit-learn wrapper classes load() may instantiate (by name, from the xgboost package)
WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")


class XGBoostFlavor:
    """``xgboost.Booster`` and ``xgboost.XGBModel`` subclasses."""

    name = "xgboost"

    def matches(self, model: object) -> bool:
        if not library_loaded("xgboost"):
            return False
        import xgboost as xgb

        return isinstance(model, xgb.Booster | xgb.XGBModel)

    def save(
        self, model: Any, directory: Path, *, example: Any = None, format: str = "ubj", **options: Any
    ) -> dict[str, Any]:
        reject_options(self.name, options)
        xgb = require("xgboost", "ml")

        if format not in FORMATS:
            raise ValidationError(f"XGBoost models are saved as 'ubj' or 'json', got format={format!r}")
        file = f"model.{format}"
        if isinstance(model, xgb.XGBModel):
            cls = type(model).__name__
            if cls not in WRAPPERS or type(model).__module__.split(".")[0] != "xgboost":
                raise ValidationError(
                    f"XGBoost wrapper {type(model).__qualname__} is not supported; use one of {', '.join(WRAPPERS)} "
                    "or register model.get_booster()"
                )
            try:
                model.get_booster()
            except xgb.core.XGBoostError as exc:
                raise ValidationError(f"the {cls} model is not fitted; fit it before registering") from exc
            model.save_model(str(directory / file))
            return {"file": file, "kind": "sklearn", "class": cls}
        model.save_model(str(directory / file))
        return {"file": file, "kind": "booster"}

    def load(self, directory: Path, options: dict[str, Any]) -> Any:
        xgb = require("xgboost", "ml")

        path = str(directory / options["file"])
        if options.get("kind") == "booster":
            booster = xgb.Booster()
            booster.load_model(path)
            return booster
        cls = options.get("class")
        if cls not in WRAPPERS:
            raise IntegrityError(f"stored XGBoost wrapper class {cls!r} is not one of {', '.join(WRAPPERS)}")
        model = getattr(xgb, cls)()
        model.load_model(path)
        return model

    def predict(self, model: Any, X: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
        xgb = require("xgboost", "ml")

        if isinstance(model, xgb.Booster):
            import numpy as np
            import pandas as pd

            names = model.feature_names
            if isinstance(X, pd.DataFrame):
                matrix = xgb.DMatrix(X)
            else:
                matrix = xgb.DMatrix(np.asarray(X, dtype=np.float64), feature_names=names)
            return {"predict": as_array(model.predict(matrix))}
        names = getattr(model, "feature_names_in_", None)
        return estimator_outputs(model, X, names)
