"""hsml's model schemas: ``Schema(X_train)`` and ``ModelSchema(input_schema, output_schema)``.

Hopsworks tutorials describe a model's inputs and outputs before registering it::

    from fti.registry.schema import Schema, ModelSchema   # was: from hsml.schema import Schema ...

    model_schema = ModelSchema(input_schema=Schema(X_train), output_schema=Schema(y_train))
    mr.python.create_model("iris", model_schema=model_schema, ...).save(model_dir)

A schema is columnar (a DataFrame, a Series, or a list of ``{"name", "type"}`` dicts) or a tensor
(a numpy array: its dtype and shape). fti stores the model schema in the version's signature
(``mv.model_schema``); its input schema names and types the signature's inputs, which serving
validates requests against. The signature's outputs stay what the model returns (``predict``,
``predict_proba``), so the output schema is kept as a description of the label.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.registry.signature import TensorSpec, oip_datatype

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from fti.registry.signature import ModelSignature


class Schema:
    """The columns (name and type) or the tensor (type and shape) of a model's input or output.

    Args:
        object: A pandas DataFrame or Series, a numpy array, or a list of ``{"name": ..., "type": ...}``
            dicts (hsml's columnar schema).

    Raises:
        ValidationError: another kind of object, or a column dict without a name or type.
    """

    def __init__(self, object: Any = None, **kwargs: Any) -> None:
        if kwargs:
            raise ValidationError(f"Schema takes one data object, got unknown arguments {sorted(kwargs)}")
        self.columnar_schema: list[dict[str, str]] | None = None
        self.tensor_schema: dict[str, Any] | None = None
        import numpy as np
        import pandas as pd

        if isinstance(object, pd.DataFrame):
            self.columnar_schema = [{"name": str(c), "type": str(object[c].dtype)} for c in object.columns]
        elif isinstance(object, pd.Series):
            self.columnar_schema = [{"name": str(object.name), "type": str(object.dtype)}]
        elif isinstance(object, np.ndarray):
            self.tensor_schema = {"type": str(object.dtype), "shape": [int(d) for d in object.shape]}
        elif isinstance(object, list) and all(isinstance(c, dict) for c in object):
            self.columnar_schema = [_column(c) for c in object]
        else:
            raise ValidationError(
                f"Schema takes a pandas DataFrame or Series, a numpy array or a list of "
                f"{{'name', 'type'}} dicts, got {type(object).__name__}"
            )

    def to_dict(self) -> dict[str, Any]:
        """``{"columnar_schema": [{"name", "type"}, ...]}`` or ``{"tensor_schema": {"type", "shape"}}``."""
        if self.columnar_schema is not None:
            return {"columnar_schema": [dict(c) for c in self.columnar_schema]}
        return {"tensor_schema": dict(self.tensor_schema or {})}

    def __repr__(self) -> str:
        return f"Schema({self.to_dict()})"


class ModelSchema:
    """A model's input and output schemas (either may be left out).

    Args:
        input_schema: The :class:`Schema` of the model's input (e.g. ``Schema(X_train)``).
        output_schema: The :class:`Schema` of its output (e.g. ``Schema(y_train)``).
    """

    def __init__(self, input_schema: Schema | None = None, output_schema: Schema | None = None) -> None:
        for name, value in (("input_schema", input_schema), ("output_schema", output_schema)):
            if value is not None and not isinstance(value, Schema):
                raise ValidationError(f"ModelSchema's {name} must be a Schema, got {type(value).__name__}")
        self.input_schema = input_schema
        self.output_schema = output_schema

    def to_dict(self) -> dict[str, Any]:
        """``{"input_schema": ..., "output_schema": ...}`` with each schema's ``to_dict()``."""
        return {
            "input_schema": None if self.input_schema is None else self.input_schema.to_dict(),
            "output_schema": None if self.output_schema is None else self.output_schema.to_dict(),
        }

    def __repr__(self) -> str:
        return f"ModelSchema({self.to_dict()})"


def apply(
    signature: ModelSignature, model_schema: Any, example: pd.DataFrame | np.ndarray | None
) -> ModelSignature:
    """``signature`` with the model schema stored in it and its inputs named by the input schema.

    With an input example (or a feature view) the inputs are already known: the schema's column
    names must be the same, in the same order. Without one, the schema's columns (or the tensor's
    last axis) become the inputs.

    Raises:
        ValidationError: not a ModelSchema, or its input columns differ from the model's inputs.
    """
    if not isinstance(model_schema, ModelSchema):
        raise ValidationError(
            f"model_schema must be a ModelSchema(input_schema=Schema(X), output_schema=Schema(y)), got "
            f"{type(model_schema).__name__}"
        )
    inputs = signature.inputs
    given = model_schema.input_schema
    if given is not None and given.columnar_schema is not None:
        names = [c["name"] for c in given.columnar_schema]
        if inputs and names != [t.name for t in inputs]:
            raise ValidationError(
                f"model_schema's input columns {names} differ from the model's inputs "
                f"{[t.name for t in inputs]} (from the input example or feature view); build the schema "
                "from the same data: Schema(X_train)"
            )
        if not inputs:
            inputs = [TensorSpec(c["name"], oip_datatype(c["type"]), [-1]) for c in given.columnar_schema]
    elif given is not None and given.tensor_schema and not inputs and example is None:
        shape = given.tensor_schema["shape"]
        width = shape[-1] if len(shape) > 1 else 1
        datatype = oip_datatype(given.tensor_schema["type"])
        inputs = [TensorSpec(f"input_{i}", datatype, [-1]) for i in range(width)]
    return replace(signature, inputs=inputs, model_schema=model_schema.to_dict())


def _column(column: dict[str, Any]) -> dict[str, str]:
    if not isinstance(column.get("name"), str) or not isinstance(column.get("type"), str):
        raise ValidationError(f"a schema column needs a string 'name' and 'type', got {column!r}")
    return {"name": column["name"], "type": column["type"]}
