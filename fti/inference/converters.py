"""Converters: build the faster candidates of a native model, one builder per conversion.

* LightGBM: a forest compiled to machine code (``lleaves``, LLVM), then ONNX Runtime
  (``onnxmltools``).
* scikit-learn: ONNX Runtime via ``skl2onnx`` (random forests, gradient boosting, pipelines of
  numeric transformers); HistGradientBoosting through :mod:`fti.inference._onnx_hgb`.
* XGBoost and other families: none; native predict (``inplace_predict``) is the fastest.

A builder takes ``(model, sample, reference, entry)`` and returns a scorer or None. ONNX
builders try float32 inputs, then float64, and return the first variant that reproduces
``reference`` on ``sample``; every candidate is verified again by the caller. Converted bytes are
kept in the cache ``entry`` when there is one, so a conversion runs once per model version. The
converters are optional (``pip install 'fti[fast]'``): a missing one means no candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.inference.base import Scorer
from fti.inference.compiled import LLEAVES_LIBRARY, LLEAVES_MODEL, CompiledLightGBMScorer
from fti.inference.entry import CacheEntry, sha256
from fti.inference.native import family
from fti.inference.onnx_runtime import OnnxScorer
from fti.inference.verification import agrees, safe_predict

if TYPE_CHECKING:
    import numpy as np

Builder = Callable[[Any, "np.ndarray", "dict[str, np.ndarray]", "CacheEntry | None"], "Scorer | None"]
"""``(model, sample, reference, cache entry) -> candidate scorer or None``."""


def builders(model: Any) -> list[Builder]:
    """The candidate builders for ``model``'s family, most promising first."""
    kind = family(model)
    if kind == "lightgbm":
        return [_build_lleaves, _build_onnx_lightgbm]
    if kind == "sklearn":
        if type(model).__name__.startswith("HistGradientBoosting"):
            return [_build_onnx_hgb]
        return [_build_onnx_sklearn]
    return []  # xgboost and others: native is the fastest correct path


def _cached(entry: CacheEntry | None, suffix: str, make: Callable[[], bytes]) -> Callable[[], bytes]:
    return make if entry is None else lambda: entry.read_or_make(suffix, make)


def _build_onnx_sklearn(
    model: Any, sample: np.ndarray, reference: dict[str, np.ndarray], entry: CacheEntry | None
) -> Scorer | None:
    import numpy as np

    def convert(dtype: Any) -> bytes:
        from skl2onnx import to_onnx

        options = {"zipmap": False} if "predict_proba" in reference else None
        onx = to_onnx(
            model, sample[:1].astype(dtype), options=options, target_opset={"": 17, "ai.onnx.ml": 3}
        )
        return bytes(onx.SerializeToString())

    return _first_agreeing(
        [
            (np.float32, ".sk32.onnx", _cached(entry, ".sk32.onnx", lambda: convert(np.float32))),
            (np.float64, ".sk64.onnx", _cached(entry, ".sk64.onnx", lambda: convert(np.float64))),
        ],
        sample,
        reference,
    )


def _build_onnx_lightgbm(
    model: Any, sample: np.ndarray, reference: dict[str, np.ndarray], entry: CacheEntry | None
) -> Scorer | None:
    import numpy as np

    def convert() -> bytes:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        initial = [("X", FloatTensorType([None, sample.shape[1]]))]
        onx = onnxmltools.convert_lightgbm(model, initial_types=initial, zipmap=False, target_opset=15)
        return bytes(onx.SerializeToString())

    return _first_agreeing(
        [(np.float32, ".lgb32.onnx", _cached(entry, ".lgb32.onnx", convert))], sample, reference
    )


def _build_lleaves(
    model: Any, sample: np.ndarray, reference: dict[str, np.ndarray], entry: CacheEntry | None
) -> Scorer | None:
    """The forest compiled by lleaves. The compiled library is machine code that gets loaded and
    run, so a cached one is used only if a signed manifest of this entry vouches for its digest
    (``entry.trusted``), and then from a private copy of the verified bytes; otherwise the forest
    is compiled afresh in a private directory and the result cached."""
    import importlib.util
    import shutil
    import tempfile

    if importlib.util.find_spec("lleaves") is None:
        return None
    booster = getattr(model, "booster_", model)
    text = booster.model_to_string().encode()
    private = Path(tempfile.mkdtemp(prefix="fti-lleaves-"))
    try:
        model_file = private / "model.txt"
        model_file.write_bytes(text)
        library = private / "forest.o"
        cached = entry.path(LLEAVES_LIBRARY) if entry is not None else None
        trusted = entry.trusted.get(LLEAVES_LIBRARY) if entry is not None else None
        if cached is not None and trusted is not None and cached.exists():
            data = cached.read_bytes()
            if (
                sha256(data) == trusted
                and entry is not None
                and entry.trusted.get(LLEAVES_MODEL) == sha256(text)
            ):
                library.write_bytes(data)  # the verified bytes, not the path someone may swap
        scorer = CompiledLightGBMScorer(getattr(model, "classes_", None), library, model_file)
    finally:
        shutil.rmtree(private, ignore_errors=True)  # loaded into memory by now
    if entry is not None:
        entry.write(LLEAVES_MODEL, scorer.model_text)
        entry.write(LLEAVES_LIBRARY, scorer.library_bytes)
    return scorer


def _build_onnx_hgb(
    model: Any, sample: np.ndarray, reference: dict[str, np.ndarray], entry: CacheEntry | None
) -> OnnxScorer | None:
    import numpy as np

    from fti.inference import _onnx_hgb

    def post(raw: np.ndarray) -> dict[str, np.ndarray]:
        return _onnx_hgb.outputs(model, raw)

    n = sample.shape[1]
    scorer = _first_agreeing(
        [
            (
                np.float32,
                ".hgb32.onnx",
                _cached(entry, ".hgb32.onnx", lambda: _onnx_hgb.to_onnx(model, n, np.float32)),
            ),
            (
                np.float64,
                ".hgb64.onnx",
                _cached(entry, ".hgb64.onnx", lambda: _onnx_hgb.to_onnx(model, n, np.float64)),
            ),
        ],
        sample,
        reference,
        post,
    )
    if scorer is not None:
        scorer.post_spec = _onnx_hgb.post_spec(model)
    return scorer


def _first_agreeing(
    options: list[tuple[Any, str, Callable[[], bytes]]],
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    post: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
) -> OnnxScorer | None:
    """The first ONNX variant (float32 input, then float64) that reproduces the reference."""
    names = list(reference)
    for dtype, suffix, load in options:
        try:
            scorer = OnnxScorer(load(), names, dtype, post)
        except Exception:
            continue
        if agrees(safe_predict(scorer, sample), reference):
            scorer.match_dtypes(reference)
            scorer.artifact = suffix
            return scorer
    return None
