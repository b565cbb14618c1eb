"""ONNX flavor: an ``onnx.ModelProto`` stored as ``model.onnx`` and run with ONNX Runtime.

``load`` returns an ``onnxruntime.InferenceSession``; ``predict`` accepts a session or a
``ModelProto``. Models with one 2-D input get the feature matrix; models with one input per
feature get each column as ``[n, 1]``. Outputs ``label``/``probabilities`` (skl2onnx classifiers)
map to ``predict``/``predict_proba``; a single output is ``predict``; other outputs keep their names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.registry.flavors.base import library_loaded, reject_options, require

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MODEL_FILE = "model.onnx"

_ONNX_TO_NUMPY = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor:
    """``onnx.ModelProto`` models, executed with ONNX Runtime on CPU."""

    name = "onnx"

    def matches(self, model: object) -> bool:
        if not library_loaded("onnx"):
            return False
        import onnx

        return isinstance(model, onnx.ModelProto)

    def save(self, model: Any, directory: Path, *, example: Any = None, **options: Any) -> dict[str, Any]:
        reject_options(self.name, options)
        import onnx

        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise ValidationError(f"the ONNX model is invalid: {exc}") from exc
        (directory / MODEL_FILE).write_bytes(model.SerializeToString())
        return {"file": MODEL_FILE}

    def load(self, directory: Path, options: dict[str, Any]) -> Any:
        return _session((directory / options.get("file", MODEL_FILE)).read_bytes())

    def predict(self, model: Any, X: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
        import numpy as np
        import pandas as pd

        session = _session(model.SerializeToString()) if not hasattr(model, "get_inputs") else model
        inputs = session.get_inputs()
        columns = list(X.columns) if isinstance(X, pd.DataFrame) else None
        matrix = X.to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)
        if matrix.ndim != 2:
            raise ValidationError(f"model input must be 2-D (rows x features), got shape {matrix.shape}")
        feed: dict[str, Any] = {}
        if len(inputs) == 1:
            feed[inputs[0].name] = _cast(matrix, inputs[0].type)
        else:
            if matrix.shape[1] != len(inputs):
                raise ValidationError(
                    f"the ONNX model has {len(inputs)} inputs {[i.name for i in inputs]}, got {matrix.shape[1]} columns"
                )
            for i, spec in enumerate(inputs):
                j = columns.index(spec.name) if columns is not None and spec.name in columns else i
                column = matrix[:, j]
                feed[spec.name] = _cast(column.reshape(-1, 1) if len(spec.shape) == 2 else column, spec.type)
        names = [o.name for o in session.get_outputs()]
        results = session.run(None, feed)
        outputs: dict[str, np.ndarray] = {}
        for name, value in zip(names, results, strict=True):
            array = _to_array(value)
            if len(names) == 1 or name in ("label", "output_label", "variable"):
                outputs["predict"] = array
            elif name in ("probabilities", "output_probability"):
                outputs["predict_proba"] = array
            else:
                outputs[name] = array
        if "predict" not in outputs:  # no conventional label output: the first output is the prediction
            first = names[0]
            outputs = {"predict": outputs.pop(first), **outputs}
        return outputs


def _session(data: bytes) -> Any:
    ort = require("onnxruntime", "ml")

    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _cast(values: Any, onnx_type: str) -> Any:
    import numpy as np

    dtype = _ONNX_TO_NUMPY.get(onnx_type)
    if dtype is None:
        raise ValidationError(f"ONNX input type {onnx_type} is not supported")
    if dtype == "object":
        return np.asarray(values).astype(str).astype(object)
    return np.asarray(values).astype(dtype)


def _to_array(value: Any) -> np.ndarray:
    import numpy as np

    if isinstance(value, list) and value and isinstance(value[0], dict):  # ZipMap: one dict per row
        keys = sorted(value[0])
        return np.asarray([[row[k] for k in keys] for row in value])
    return np.asarray(value)
