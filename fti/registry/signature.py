"""Model signatures: input and output tensors named and typed in Open Inference Protocol terms.

Inputs are one :class:`TensorSpec` per feature column (shape ``[-1]``), in model-input order:
the feature view's transformed feature names, else the input example's columns, else
``input_0, input_1, ...`` for an unnamed array. Outputs come from a prediction on the example:
``predict`` (``[-1]`` or ``[-1, k]``) and, for classifiers, ``predict_proba`` (``[-1, n_classes]``).
Serving validates requests against the signature, so its datatypes are OIP datatypes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

OIP_DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)

_BY_NAME = {
    "bool": "BOOL",
    "boolean": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "double": "FP64",
    "float": "FP64",  # numpy's "float" is float64, like Python's float
    "int": "INT64",
    # fti dtypes and pandas/numpy text-like dtypes travel as BYTES (UTF-8 strings)
    "string": "BYTES",
    "str": "BYTES",
    "binary": "BYTES",
    "object": "BYTES",
    "category": "BYTES",
    "bytes": "BYTES",
    # dates and timestamps are sent as ISO-8601 strings
    "date": "BYTES",
    "timestamp": "BYTES",
}


def oip_datatype(dtype: Any) -> str:
    """The Open Inference Protocol datatype of a numpy, pandas or fti dtype.

    >>> oip_datatype("float64"), oip_datatype("string"), oip_datatype("Int64")
    ('FP64', 'BYTES', 'INT64')
    """
    name = str(dtype)
    key = name.lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    kind = getattr(dtype, "kind", None)
    if kind in ("U", "S", "O", "T"):  # numpy unicode, bytes, object, StringDType
        return "BYTES"
    if kind == "M" or key.startswith(("datetime64", "timestamp[")):
        return "BYTES"
    if key.startswith(("string", "large_string", "str")):
        return "BYTES"
    raise ValidationError(
        f"dtype {name!r} has no Open Inference Protocol datatype; use bool, (u)int8-64, "
        "float16/32/64 or string columns"
    )


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output tensor: an OIP datatype and a shape with -1 for the batch axis."""

    name: str
    datatype: str
    shape: list[int] = field(default_factory=lambda: [-1])

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValidationError(f"tensor names must be non-empty strings, got {self.name!r}")
        if self.datatype not in OIP_DATATYPES:
            raise ValidationError(
                f"tensor {self.name!r} has datatype {self.datatype!r}; use one of {', '.join(OIP_DATATYPES)}"
            )
        if not isinstance(self.shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and (d == -1 or d >= 0) for d in self.shape
        ):
            raise ValidationError(
                f"tensor {self.name!r} has invalid shape {self.shape!r}: use ints, -1 = any"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(str(data["name"]), str(data["datatype"]), [int(d) for d in data["shape"]])


@dataclass(frozen=True)
class ModelSignature:
    """The inputs (one per feature column, in order) and outputs of a model version."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    classes: list[str] | None = None
    """A classifier's class labels in the order of its ``predict_proba`` columns (from the
    model's ``classes_``), as strings; None for other models."""
    allow_widening: bool = False
    """Serving accepts an input of a narrower datatype than the signature's when the conversion
    is lossless (INT32 for INT64, FP32 or INT16 for FP64; see :func:`widens`). Off by default:
    as in Triton, an input whose datatype differs from the signature's is refused."""
    model_schema: dict[str, Any] | None = None
    """hsml's model schema given at registration (``ModelSchema(...).to_dict()``), or None."""

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }
        if self.classes is not None:
            data["classes"] = list(self.classes)
        if self.allow_widening:
            data["allow_widening"] = True
        if self.model_schema is not None:
            data["model_schema"] = self.model_schema
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSignature:
        classes = data.get("classes")
        return cls(
            inputs=[TensorSpec.from_dict(t) for t in data.get("inputs", [])],
            outputs=[TensorSpec.from_dict(t) for t in data.get("outputs", [])],
            classes=None if classes is None else [str(c) for c in classes],
            allow_widening=bool(data.get("allow_widening", False)),
            model_schema=data.get("model_schema"),
        )


_WIDTH = {"INT8": 8, "INT16": 16, "INT32": 32, "INT64": 64, "UINT8": 8, "UINT16": 16, "UINT32": 32}
_WIDTH |= {"UINT64": 64, "FP16": 16, "FP32": 32, "FP64": 64}
_MANTISSA = {"FP16": 11, "FP32": 24, "FP64": 53}  # significand bits: integers exactly representable


def widens(given: str, expected: str) -> bool:
    """Whether every value of OIP datatype ``given`` converts to ``expected`` without loss.

    Integers widen to wider integers of the same signedness, unsigned to wider signed ones, and
    to floats whose significand holds them (INT16 to FP32, INT32 to FP64, never INT64 to FP64);
    floats to wider floats. BOOL and BYTES never widen.

    >>> widens("INT32", "INT64"), widens("FP32", "FP64"), widens("INT64", "FP64")
    (True, True, False)
    """
    if given not in _WIDTH or expected not in _WIDTH or given == expected:
        return given == expected and given in OIP_DATATYPES
    bits, target = _WIDTH[given], _WIDTH[expected]
    if given.startswith("FP"):
        return expected.startswith("FP") and target > bits
    if expected.startswith("FP"):
        return bits < _MANTISSA[expected]
    if given.startswith("UINT"):  # to a wider unsigned or signed integer
        return target > bits
    return expected.startswith("INT") and target > bits


def class_labels(model: Any) -> list[str] | None:
    """A classifier's ``classes_`` as strings (scikit-learn, XGBoost and LightGBM estimators and
    pipelines), or None for models without them."""
    try:
        classes = getattr(model, "classes_", None)
    except Exception:  # a property of an unfitted or exotic estimator: no labels to record
        return None
    if classes is None:
        return None
    try:
        return [str(c.item() if hasattr(c, "item") else c) for c in list(classes)]
    except TypeError:
        return None


def example_frame(example: Any) -> pd.DataFrame | np.ndarray | None:
    """Normalise an input example to a pandas DataFrame or a 2-D numpy array (None stays None)."""
    if example is None:
        return None
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        frame = example
    elif isinstance(example, np.ndarray):
        if example.ndim == 1:
            example = example.reshape(1, -1)
        if example.ndim != 2:
            raise ValidationError(f"input_example must be 2-D (rows x features), got shape {example.shape}")
        if example.shape[0] == 0:
            raise ValidationError("input_example has no rows; pass a few rows of training features")
        array: np.ndarray = example
        return array
    elif type(example).__module__.startswith("polars"):
        frame = example.to_pandas()
    elif isinstance(example, list | tuple) and example and all(isinstance(r, dict) for r in example):
        frame = pd.DataFrame(list(example))
    elif isinstance(example, dict):
        frame = pd.DataFrame(example)
    else:
        raise ValidationError(
            f"input_example must be a pandas or polars DataFrame, a 2-D numpy array, a dict of columns "
            f"or a list of row dicts, got {type(example).__name__}"
        )
    if len(frame) == 0:
        raise ValidationError("input_example has no rows; pass a few rows of training features")
    return frame


EXAMPLE_ROWS = 20
"""How many rows of an input example are stored with a model version."""


def example_json(example: pd.DataFrame | np.ndarray | None) -> dict[str, Any] | None:
    """The first rows of a normalised input example as JSON (stored in the catalog with the version)."""
    if example is None:
        return None
    import json

    import pandas as pd

    if isinstance(example, pd.DataFrame):
        head = example.head(EXAMPLE_ROWS)
        data = json.loads(head.to_json(orient="split", index=False, date_format="iso"))
        return {
            "columns": [str(c) for c in head.columns],
            "dtypes": {str(c): str(t) for c, t in head.dtypes.items()},
            "data": data["data"],
        }
    head = pd.DataFrame(example[:EXAMPLE_ROWS])
    return {"columns": None, "dtypes": None, "data": json.loads(head.to_json(orient="values"))}


def check_example_columns(
    example: pd.DataFrame | np.ndarray | None,
    feature_names: list[str] | None,
    droppable: set[str] | frozenset[str] = frozenset(),
) -> list[str] | None:
    """The model's input names: the feature view's, or those of a DataFrame example that leaves
    out some of the ``droppable`` (key and event-time) columns, the rest in the view's order.

    Raises:
        ValidationError: the example's columns are neither.
    """
    import pandas as pd

    if feature_names is None or not isinstance(example, pd.DataFrame):
        return feature_names
    columns = [str(c) for c in example.columns]
    if columns == list(feature_names):
        return feature_names
    left_out = set(feature_names) - set(columns)
    if left_out and left_out <= droppable and columns == [n for n in feature_names if n not in left_out]:
        return columns
    raise ValidationError(
        f"input_example columns {columns} differ from the feature view's feature names "
        f"{list(feature_names)}; pass the transformed training features in that order (the view's "
        f"key and event-time columns {sorted(droppable)} may be left out)"
    )


def infer_signature(
    example: pd.DataFrame | np.ndarray | None,
    outputs: dict[str, np.ndarray] | None,
    *,
    feature_names: list[str] | None = None,
    feature_dtypes: dict[str, str] | None = None,
    classes: list[str] | None = None,
) -> ModelSignature:
    """Build a signature from the feature view's columns and/or the example and its predictions.

    Args:
        example: The normalised input example (see :func:`example_frame`).
        outputs: The flavor's predictions on the example, or None without an example.
        feature_names: The feature view's transformed feature names (model-input order).
        feature_dtypes: Their fti dtypes.
        classes: A classifier's class labels (see :func:`class_labels`).

    Raises:
        ValidationError: the example's columns differ from the feature view's feature names.
    """
    import pandas as pd

    inputs: list[TensorSpec] = []
    if feature_names is not None:
        dtypes = feature_dtypes or {}
        check_example_columns(example, feature_names)
        for i, name in enumerate(feature_names):
            if name in dtypes:
                datatype = oip_datatype(dtypes[name])
            elif isinstance(example, pd.DataFrame):
                datatype = oip_datatype(example[name].dtype)
            elif example is not None:
                datatype = oip_datatype(example[:, i].dtype)
            else:
                datatype = "FP64"
            inputs.append(TensorSpec(name, datatype, [-1]))
    elif isinstance(example, pd.DataFrame):
        inputs = [TensorSpec(str(c), oip_datatype(example[c].dtype), [-1]) for c in example.columns]
    elif example is not None:
        datatype = oip_datatype(example.dtype)
        inputs = [TensorSpec(f"input_{i}", datatype, [-1]) for i in range(example.shape[1])]
    specs = [
        TensorSpec(name, oip_datatype(array.dtype), [-1, *(int(d) for d in array.shape[1:])])
        for name, array in (outputs or {}).items()
    ]
    return ModelSignature(inputs=inputs, outputs=specs, classes=classes)
