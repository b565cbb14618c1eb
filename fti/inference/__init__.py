"""Inference: run a registered model over rows as fast as is correct, for serving and batch.

What belongs here (one module per concept):

* ``base`` — the :class:`Scorer` Protocol and what inference needs from a model version;
* scorers, one module per family: ``native`` (the model's own library, the reference),
  ``onnx_runtime`` (ONNX Runtime), ``compiled`` (LightGBM compiled by lleaves);
* ``converters`` — building those candidates (skl2onnx, onnxmltools, lleaves, and ``_onnx_hgb``
  for scikit-learn's HistGradientBoosting);
* ``verification`` — a candidate is used only if it reproduces the native outputs on real rows
  (the input at hand, the model's training data, its example); ``selection`` —
  :func:`get_scorer` verifies, times and picks;
* ``linear`` — a linear model split into weights and a head that applies its own link, for
  factorized batch scoring (:mod:`fti.batch.factorized`);
* ``parallel`` — :class:`ParallelScorer` scores large batches on every core;
* ``matrix`` — :func:`to_matrix`, columnar data to the scorers' row-major matrix;
* ``entry``, ``manifest`` and ``cache`` — :class:`ScorerCache`, the one owner of the cache
  directory (``$FTI_HOME/cache/scorers``): conversions and winners bound to the model's artifact
  digests, and manifests that rebuild a converted winner without the native model.

Serving (``fti.serving.repository``) and batch (``fti.batch.job``) both take their scorers from
:class:`ScorerCache`. The reference prediction path is the model's flavor
(``fti.registry.flavors``). Importing this package loads no model library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.inference.base import ModelVersionLike, Scorer
    from fti.inference.cache import ScorerCache
    from fti.inference.matrix import to_matrix
    from fti.inference.parallel import ParallelScorer, Scores
    from fti.inference.selection import PREFER, check_prefer, get_scorer

_EXPORTS = {
    "ModelVersionLike": "base",
    "Scorer": "base",
    "ScorerCache": "cache",
    "to_matrix": "matrix",
    "ParallelScorer": "parallel",
    "Scores": "parallel",
    "PREFER": "selection",
    "check_prefer": "selection",
    "get_scorer": "selection",
}

__all__ = [
    "PREFER",
    "ModelVersionLike",
    "ParallelScorer",
    "Scorer",
    "ScorerCache",
    "Scores",
    "check_prefer",
    "get_scorer",
    "to_matrix",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fti.inference' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fti.inference.{module}"), name)
