"""Hopsworks-style transformation functions: ``label_encoder("category")`` and friends.

A Hopsworks tutorial writes ``from hopsworks.hsfs.builtin_transformations import label_encoder``
and passes ``transformation_functions=[label_encoder("category")]`` to
``fs.get_or_create_feature_view``; with fti the import becomes
``from fti.features.builtin_transformations import label_encoder`` and nothing else changes. Each
call names a feature and one of fti's transformations (:mod:`fti.features.transformations`), the
same as ``transformations={"category": "label_encoder"}``. The older Hopsworks form, a mapping
``{"category": fs.get_transformation_function(name="label_encoder")}``, works too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fti.errors import ValidationError


@dataclass(frozen=True)
class TransformationFunction:
    """A transformation (``spec``, see :mod:`fti.features.transformations`) bound to a feature,
    or unbound (``feature=None``) when used as a value of a ``{feature: function}`` mapping."""

    spec: str
    feature: str | None = None

    def __call__(self, feature: str) -> TransformationFunction:
        """This transformation bound to ``feature`` (Hopsworks: ``label_encoder("category")``)."""
        if not isinstance(feature, str) or not feature:
            raise ValidationError(
                f"{self.spec}() takes the name of the feature it transforms, got {feature!r}"
            )
        return TransformationFunction(self.spec, feature)

    @property
    def name(self) -> str:
        return self.spec


min_max_scaler = TransformationFunction("min_max_scaler")
standard_scaler = TransformationFunction("standard_scaler")
robust_scaler = TransformationFunction("robust_scaler")
label_encoder = TransformationFunction("label_encoder")
one_hot_encoder = TransformationFunction("one_hot_encoder")
log1p = TransformationFunction("log1p")

BUILTIN = {
    f.spec: f for f in (min_max_scaler, standard_scaler, robust_scaler, label_encoder, one_hot_encoder, log1p)
}


def get_transformation_function(name: str, version: int | None = None) -> TransformationFunction:
    """The built-in transformation ``name`` (Hopsworks' ``fs.get_transformation_function``)."""
    found = BUILTIN.get(name)
    if found is None:
        raise ValidationError(f"unknown transformation function {name!r}; fti has {sorted(BUILTIN)}")
    return found


def to_specs(functions: Any) -> dict[str, str]:
    """``transformation_functions`` (a list of bound functions, or a mapping of feature to a
    function or spec) as fti's ``{feature: spec}``."""
    if functions is None:
        return {}
    if isinstance(functions, Mapping):
        specs: dict[str, str] = {}
        for feature, function in functions.items():
            spec = function.spec if isinstance(function, TransformationFunction) else function
            specs[feature] = spec
        return specs
    if isinstance(functions, (str, bytes)) or not isinstance(functions, Sequence):
        raise ValidationError(
            f"transformation_functions must be a list such as [label_encoder('category')], got {functions!r}"
        )
    specs = {}
    for function in functions:
        if not isinstance(function, TransformationFunction) or function.feature is None:
            raise ValidationError(
                "transformation_functions takes functions bound to a feature, such as "
                f"label_encoder('category'), got {function!r}"
            )
        if function.feature in specs:
            raise ValidationError(f"feature {function.feature!r} has two transformation functions")
        specs[function.feature] = function.spec
    return specs
