"""Verification: a candidate scorer is used only if it reproduces the native outputs on real rows.

Labels must be identical, probabilities within :data:`PROBA_ATOL` and regression values within
:data:`VALUE_RTOL` of the largest value, with the same output names and shapes (:func:`agrees`);
a scorer that fails to predict at all does not agree.

A conversion can agree with the native model on a handful of rows and still differ where the
real data lies (a float32 graph rounds a feature like epoch seconds to multiples of 128, which
moves rows across a split that no example row is near). So candidates are verified on the rows
the model will score, or was trained on (:func:`verification_sample`):

1. the input at hand (a batch job's first batch), then
2. rows of the model's training data — the registered version's feature view and training
   dataset version, read through ``FeatureView.get_training_data`` and spread evenly over the
   dataset — until :data:`VERIFY_ROWS` rows, then
3. the input example kept at registration (always, it is a few rows).

Only a model registered with neither a feature view nor an example gets a synthetic sample.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fti.errors import FtiError
from fti.inference.base import ModelVersionLike, Scorer

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("fti.inference")

PROBA_ATOL = 1e-5
"""Largest absolute difference of a probability from the native one."""
VALUE_RTOL = 1e-5
"""Largest difference of a regression value, relative to the largest native value (at least 1)."""
VERIFY_ROWS = 4_096
"""Rows of real data every candidate must reproduce the native outputs on (plus the example)."""
SYNTHETIC_ROWS = 64


def agrees(outputs: dict[str, np.ndarray] | None, reference: dict[str, np.ndarray]) -> bool:
    """Labels identical; probabilities and values within a tight tolerance; same shapes."""
    import numpy as np

    if outputs is None or set(outputs) != set(reference):
        return False
    for name, ref in reference.items():
        got = np.asarray(outputs[name])
        if got.shape != ref.shape:
            return False
        if ref.dtype.kind in "fc" and got.dtype.kind in "fc":
            tolerance = (
                PROBA_ATOL if name == "predict_proba" else VALUE_RTOL * max(1.0, float(np.abs(ref).max()))
            )
            if not np.allclose(got, ref, rtol=0.0, atol=tolerance, equal_nan=True):
                return False
        elif not bool((got.astype(object) == ref.astype(object)).all()):
            return False
    return True


def safe_predict(scorer: Scorer, sample: np.ndarray) -> dict[str, np.ndarray] | None:
    """``scorer``'s outputs on ``sample``, or None if it raises (a candidate that cannot score)."""
    try:
        return scorer.predict(sample)
    except Exception:
        return None


def verification_sample(
    version: ModelVersionLike, rows: np.ndarray | None = None, *, limit: int = VERIFY_ROWS
) -> np.ndarray:
    """Real rows to verify ``version``'s converted scorers on (see the module docstring).

    Args:
        version: The registered model version.
        rows: Model-input rows at hand (a batch job's input); the first ``limit`` are used first.
        limit: How many rows of input and training data to take (the example comes on top).

    Returns:
        A 2-D float64 matrix with one column per model input.
    """
    import numpy as np

    width = len(version.signature.inputs) if rows is None else int(np.shape(rows)[1])
    parts: list[np.ndarray] = []
    if rows is not None and len(rows):
        parts.append(np.asarray(rows[:limit], dtype=np.float64))
    missing = limit - sum(len(part) for part in parts)
    if missing > 0:
        training = training_rows(version, missing)
        if training is not None and training.shape[1] == width:
            parts.append(training)
    example = _example_rows(version)
    if example is not None and example.shape[1] == width:
        parts.append(example)
    if parts:
        return np.concatenate(parts)
    return np.random.default_rng(0).normal(size=(SYNTHETIC_ROWS, width))


def training_rows(version: ModelVersionLike, limit: int) -> np.ndarray | None:
    """Up to ``limit`` model-input rows of ``version``'s training dataset, spread evenly over it,
    or None when it was registered without one or it cannot be read (a warning says why)."""
    import numpy as np

    from fti.inference.matrix import to_matrix

    td_version = version.training_dataset_version
    if td_version is None or limit < 1:
        return None
    try:
        feature_view = version.feature_view()
        if feature_view is None:
            return None
        parts = feature_view.get_training_data(td_version)
        columns = [tensor.name for tensor in version.signature.inputs]
        # X parts, then y parts: (X, y), (X_train, X_test, y_train, y_test), or the six-tuple
        features = [to_matrix(x, columns) for x in parts[: len(parts) // 2]]
    except (FtiError, OSError) as exc:  # a view or dataset deleted since: the example still verifies
        log.warning(
            "model %s version %s: its training dataset version %s cannot be read to verify "
            "converted scorers (%s); verifying on its input example only",
            version.name,
            version.version,
            td_version,
            exc,
        )
        return None
    matrix = np.concatenate(features) if features else np.empty((0, len(columns)))
    if len(matrix) > limit:  # evenly spaced rows cover the whole (time-ordered) dataset
        matrix = matrix[np.linspace(0, len(matrix) - 1, limit).round().astype(np.int64)]
    return matrix if len(matrix) else None


def _example_rows(version: ModelVersionLike) -> np.ndarray | None:
    """The input example kept at registration as a float matrix, if it is one."""
    import numpy as np

    example = version.input_example()
    if example is None:
        return None
    columns = [tensor.name for tensor in version.signature.inputs]
    if hasattr(example, "columns") and set(columns) <= set(example.columns):
        example = example[columns]  # a frame's columns in model-input order
    try:
        array = np.asarray(example, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 2 and len(array) else None
