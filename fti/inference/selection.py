"""Choosing a scorer: the fastest candidate that reproduces the native predictions.

:func:`get_scorer` builds the candidates for the model's family (:mod:`fti.inference.converters`),
checks each one against the native predictions on a sample (:mod:`fti.inference.verification`),
times the survivors on the same rows, and returns the fastest. A candidate that cannot be built
or disagrees on the sample is dropped, so the worst case is always the native scorer. With a
cache entry, the measured winner is remembered (later runs re-verify only the winner) and a
converted winner is recorded in a manifest (:mod:`fti.inference.manifest`) so it can be rebuilt
without the native model.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.inference.base import PredictFn, Scorer, as_array
from fti.inference.compiled import CompiledLightGBMScorer
from fti.inference.converters import Builder, builders
from fti.inference.entry import CacheEntry, version_key
from fti.inference.native import NativeScorer, can_fuse, native_predict
from fti.inference.onnx_runtime import OnnxScorer
from fti.inference.verification import agrees, safe_predict

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("fti.inference")

PREFER = ("fastest", "native", "converted")
"""Scorer choices: the quickest verified candidate, the native model only, or the first verified
conversion."""
TIMING_ROWS = 65_536
"""Candidates are timed on this many rows (the sample repeated): closer to batch sizes than a few
thousand rows, where per-call overheads dominate. Which scorer wins depends on the machine and its
load (on 2 cores shared with other jobs, ONNX Runtime lost to native HistGradientBoosting; on the
same machine idle it won by 1.45x), so it is measured where the model runs."""
BATCH_PREFER = (*PREFER, "factorized")
"""Batch scoring's choices: also ``"factorized"``, a linear model scored per group row of its
feature view's joins (:mod:`fti.batch.factorized`; ``"fastest"`` takes it when it wins)."""
MARGIN = 0.9
"""A converted scorer must take at most this fraction of native's time: timings on a shared
machine are noisy, and native is the reference path."""


def check_prefer(prefer: Any, choices: tuple[str, ...] = PREFER) -> None:
    """Raise ``ValidationError`` unless ``prefer`` is one of ``choices`` (default :data:`PREFER`)."""
    if prefer not in choices:
        raise ValidationError(f"prefer must be one of {choices}, got {prefer!r}")


def get_scorer(
    model: Any,
    *,
    sample: np.ndarray,
    prefer: str = "fastest",
    cache_dir: str | Path | None = None,
    cache_key: str | None = None,
    predict_fn: PredictFn | None = None,
    timing_sample: np.ndarray | None = None,
    entry: CacheEntry | None = None,
) -> Scorer:
    """The fastest scorer whose predictions equal the native ones on ``sample``.

    Args:
        model: A registered ``ModelVersion`` (loaded with ``.load()``, its flavor's ``predict`` is
            the reference) or a native model object (scikit-learn, XGBoost, LightGBM).
        sample: A 2-D numeric matrix of representative rows (a few thousand real rows, see
            :func:`fti.inference.verification.verification_sample`); every candidate must reproduce the
            native outputs on it.
        prefer: ``"fastest"`` times the verified candidates and takes the quickest; ``"native"``
            skips conversion; ``"converted"`` takes the first verified converted scorer.
        cache_dir: Where converted models are kept between runs (default: not kept).
        cache_key: A name unique to this model version for the cache (derived from a
            ``ModelVersion``; required with ``cache_dir`` for native objects).
        predict_fn: The reference predict ``(model, X) -> dict`` (default: the flavor's, or
            ``predict`` + ``predict_proba``).
        timing_sample: Distinct rows to time the candidates on (default: ``sample`` repeated
            to ``TIMING_ROWS`` rows; repeated rows flatter some scorers through warm caches).
        entry: The cache entry to use instead of ``cache_dir``/``cache_key``: one made by
            :class:`~fti.inference.cache.ScorerCache` is bound to its model version and signs its
            manifest, so later loads can trust it (an entry from ``cache_dir`` keeps conversions
            but writes no manifest that a load would accept).

    Returns:
        A scorer; ``scorer.kind`` says which path won.

    Raises:
        ValidationError: ``prefer`` is not one of :data:`PREFER`; ``sample`` is not a non-empty
            2-D matrix.
    """
    import numpy as np

    check_prefer(prefer)
    sample = np.asarray(sample)
    if sample.ndim != 2 or len(sample) == 0:
        raise ValidationError(
            f"sample must be a non-empty 2-D matrix of model inputs, got shape {sample.shape}"
        )
    native_model, predict_fn, key = _unwrap(model, predict_fn, cache_key)
    reference = {name: as_array(v) for name, v in predict_fn(native_model, sample).items()}
    native: Scorer = NativeScorer(native_model, predict_fn)
    fused = NativeScorer(native_model, predict_fn, fused=True)
    if can_fuse(native_model, reference) and agrees(fused.predict(sample), reference):
        native = fused
    if prefer == "native":
        return native
    if entry is None and cache_dir is not None and key is not None:
        entry = CacheEntry.of(cache_dir, key)
    candidates_of = builders(native_model)
    winner = None if entry is None or prefer != "fastest" else entry.choice()
    if entry is not None and winner is not None:
        # an earlier run measured the candidates: re-verify only its winner on this sample
        if winner == "native":
            return native
        for build in candidates_of:
            if build.__name__ == winner:
                scorer = _try(build, native_model, sample, reference, entry)
                if scorer is not None:
                    _remember(entry, winner, scorer, sample, reference, native_model)
                    return scorer
    candidates: list[tuple[str, Scorer]] = [("native", native)]
    for build in candidates_of:
        scorer = _try(build, native_model, sample, reference, entry)
        if scorer is not None:
            if prefer == "converted":
                return scorer
            candidates.append((build.__name__, scorer))
    best = candidates[0]
    if len(candidates) > 1:
        rows = sample if timing_sample is None else np.asarray(timing_sample)
        seconds = {name: _seconds(scorer, rows) for name, scorer in candidates}
        fastest = min(candidates[1:], key=lambda named: seconds[named[0]])
        if seconds[fastest[0]] <= MARGIN * seconds["native"]:
            best = fastest
    if entry is not None:
        entry.remember_choice(best[0])
        _remember(entry, best[0], best[1], sample, reference, native_model)
    return best[1]


def _remember(
    entry: CacheEntry,
    builder: str,
    scorer: Scorer,
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    model: Any = None,
) -> None:
    """Record a converted winner so later loads can build it without the native model
    (:mod:`fti.inference.manifest`), with the model's ``classes_``; never fails the caller."""
    if not isinstance(scorer, OnnxScorer | CompiledLightGBMScorer):
        return
    from fti.inference import manifest

    try:  # rewritten on every verified pick, so a corrupt entry heals on the next native load
        manifest.write(entry, builder, scorer, sample, reference, classes=getattr(model, "classes_", None))
    except Exception:  # the manifest is an optimisation: without it loads take the native path
        log.warning("could not record scorer %s", entry.stem, exc_info=True)


def _try(
    build: Builder,
    model: Any,
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    entry: CacheEntry | None,
) -> Scorer | None:
    """The candidate ``build`` makes, if it builds and reproduces ``reference`` on ``sample``."""
    try:
        scorer = build(model, sample, reference, entry)
    except Exception:  # any conversion failure means "not this candidate"
        return None
    if scorer is not None and agrees(safe_predict(scorer, sample), reference):
        return scorer
    return None


def _unwrap(model: Any, predict_fn: PredictFn | None, key: str | None) -> tuple[Any, PredictFn, str | None]:
    """(native model, reference predict, cache key) from a ModelVersion or a native model."""
    if hasattr(model, "load") and hasattr(model, "flavor") and hasattr(model, "version"):
        native_model = model.load()
        if predict_fn is None:
            from fti.registry.flavors.base import get_flavor

            predict_fn = get_flavor(model.flavor).predict
        return native_model, predict_fn, key or version_key(model)
    return model, predict_fn or native_predict, key


def _seconds(scorer: Scorer, sample: np.ndarray) -> float:
    """Best of three timings on at least TIMING_ROWS rows (the sample repeated)."""
    import numpy as np

    reps = max(1, -(-TIMING_ROWS // len(sample)))
    matrix = np.ascontiguousarray(np.tile(sample, (reps, 1))[:TIMING_ROWS] if reps > 1 else sample)
    scorer.predict(matrix[:100])  # warm-up (thread pools, lazy initialisation)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        scorer.predict(matrix)
        best = min(best, time.perf_counter() - start)
    return best
