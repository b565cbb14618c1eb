"""Compatibility: the scorers moved to :mod:`fti.inference`; these names keep working.

``fti.registry.scoring.get_scorer`` is :func:`fti.inference.get_scorer`; new code imports from
:mod:`fti.inference` (see its module docstring for where each concept lives).
"""

from __future__ import annotations

from fti.inference.base import CLASSES_NOT_RECORDED, PredictFn, Scorer
from fti.inference.compiled import LLEAVES_LIBRARY, LLEAVES_MODEL, CompiledLightGBMScorer
from fti.inference.entry import version_key as cache_key
from fti.inference.matrix import to_matrix
from fti.inference.native import NativeScorer, native_predict
from fti.inference.onnx_runtime import ONNX_BLOCK_ROWS, OnnxScorer
from fti.inference.parallel import PIECE_ROWS, ParallelScorer, Scores, single_threaded
from fti.inference.selection import MARGIN, PREFER, TIMING_ROWS, check_prefer, get_scorer
from fti.inference.verification import PROBA_ATOL, VALUE_RTOL

__all__ = [
    "CLASSES_NOT_RECORDED",
    "LLEAVES_LIBRARY",
    "LLEAVES_MODEL",
    "MARGIN",
    "ONNX_BLOCK_ROWS",
    "PIECE_ROWS",
    "PREFER",
    "PROBA_ATOL",
    "TIMING_ROWS",
    "VALUE_RTOL",
    "CompiledLightGBMScorer",
    "NativeScorer",
    "OnnxScorer",
    "ParallelScorer",
    "PredictFn",
    "Scorer",
    "Scores",
    "cache_key",
    "check_prefer",
    "get_scorer",
    "native_predict",
    "single_threaded",
    "to_matrix",
]
