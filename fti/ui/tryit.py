"""The "try the model" form of a deployment, generated from its model's signature (Gradio-like,
with no code from the user): one typed field per input, defaults from the stored input example;
for an enriched deployment the primary key (default: a key of the feature group) plus optional
passed features. The form's values become an Open Inference Protocol request; the answer is shown
as the predicted label and, for classifiers, a probability per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import FtiError, ValidationError

if TYPE_CHECKING:
    from fti.registry.model_version import ModelVersion

INTEGERS = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
FLOATS = ("FP16", "FP32", "FP64")


@dataclass(frozen=True)
class Field:
    """One input of the form."""

    name: str
    datatype: str
    """Open Inference Protocol datatype."""
    default: str
    required: bool
    key: bool = False
    """A primary-key column of an enriched deployment."""

    @property
    def kind(self) -> str:
        """The HTML input type."""
        if self.datatype == "BOOL":
            return "checkbox"
        return "number" if self.datatype in INTEGERS + FLOATS else "text"

    @property
    def step(self) -> str:
        return "1" if self.datatype in INTEGERS else "any"


@dataclass(frozen=True)
class TryForm:
    fields: list[Field]
    enriched: bool


@dataclass(frozen=True)
class Prediction:
    """What the model answered for the one row of the form."""

    label: str | None
    probabilities: list[tuple[str, float]]
    outputs: dict[str, Any]
    """Every output's value for the row."""


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value.item() if hasattr(value, "item") else value)


def build_form(mv: ModelVersion, enriched: bool) -> TryForm:
    """The form for a deployment serving ``mv`` (``enriched``: it looks features up by key)."""
    from fti.registry.signature import oip_datatype

    inputs = mv.signature.inputs
    if not enriched:
        example = mv.input_example()
        first: list[Any] = []
        if example is not None and len(example):
            first = list(example.iloc[0]) if hasattr(example, "iloc") else list(example[0])
        defaults = [_text(v) for v in first] + [""] * (len(inputs) - len(first))
        return TryForm([Field(s.name, s.datatype, defaults[i], True) for i, s in enumerate(inputs)], False)
    fv = mv.feature_view()
    if fv is None:
        raise ValidationError(f"model {mv.ref} has no feature view to enrich requests with")
    spine = fv.query.spine
    dtypes = {f.name: f.dtype for f in spine.features or []}
    sample = spine.read_page(limit=1).items
    keys = [
        Field(
            k, oip_datatype(dtypes.get(k, "int64")), _text(sample[0].get(k)) if sample else "", True, key=True
        )
        for k in fv.primary_key
    ]
    passed = [Field(s.name, s.datatype, "", False) for s in inputs if s.name not in fv.primary_key]
    return TryForm(keys + passed, True)


def _value(field: Field, raw: str) -> Any:
    try:
        if field.datatype in INTEGERS:
            return int(raw)
        if field.datatype in FLOATS:
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError(raw)
            return number
    except ValueError:
        kind = "an integer" if field.datatype in INTEGERS else "a finite number"
        raise ValidationError(f"{field.name} must be {kind}, got {raw!r}") from None
    return raw


def request_inputs(form: TryForm, values: dict[str, str]) -> list[dict[str, Any]]:
    """The Open Inference Protocol ``inputs`` (one row) for the submitted ``values``.

    Raises:
        ValidationError: a required field is empty or a value does not parse as its type.
    """
    inputs = []
    for field in form.fields:
        raw = values.get(f"in_{field.name}", "").strip()
        if field.datatype == "BOOL":
            if field.required or raw:
                inputs.append(
                    {
                        "name": field.name,
                        "shape": [1],
                        "datatype": "BOOL",
                        "data": [raw in ("on", "true", "1")],
                    }
                )
            continue
        if not raw:
            if field.required:
                raise ValidationError(f"{field.name} is required")
            continue  # an optional passed feature left empty: the online store's value is used
        inputs.append(
            {"name": field.name, "shape": [1], "datatype": field.datatype, "data": [_value(field, raw)]}
        )
    return inputs


def first_row(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first row of each output tensor of an inference response."""
    row: dict[str, Any] = {}
    for tensor in outputs:
        shape, data = tensor.get("shape") or [len(tensor["data"])], tensor["data"]
        width = 1
        for dim in shape[1:]:
            width *= int(dim)
        row[tensor["name"]] = data[0] if len(shape) == 1 else data[:width]
    return row


def prediction(row: dict[str, Any], classes: list[str] | None) -> Prediction:
    """The label and class probabilities of one row of outputs."""
    label = row.get("predict")
    probabilities: list[tuple[str, float]] = []
    proba = row.get("predict_proba")
    if isinstance(proba, list) and all(isinstance(p, int | float) for p in proba):
        names = (
            classes
            if classes is not None and len(classes) == len(proba)
            else [f"class {i}" for i in range(len(proba))]
        )
        probabilities = [(str(n), float(p)) for n, p in zip(names, proba, strict=True)]
    if isinstance(label, list):
        label = ", ".join(str(x) for x in label)
    return Prediction(None if label is None else str(label), probabilities, row)


def error_message(exc: Exception) -> str:
    return exc.message if isinstance(exc, FtiError) else f"prediction failed ({type(exc).__name__})"
