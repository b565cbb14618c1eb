"""Rows to verify a model version's converted scorers on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fti.inference.base import ModelVersionLike

if TYPE_CHECKING:
    import numpy as np


def verification_sample(version: ModelVersionLike) -> np.ndarray:
    """The model's input example if the registry kept one, else a deterministic synthetic sample."""
    import numpy as np

    example = version.input_example()
    width = len(version.signature.inputs)
    if example is not None:
        try:
            array = np.asarray(example, dtype=np.float64)
            if array.ndim == 2 and array.shape[1] == width:
                return array
        except (TypeError, ValueError):
            pass
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, width))
