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
from fti.inference.entry import WORKLOADS, CacheEntry, purpose, version_key
from fti.inference.native import NativeScorer, native_predict
from fti.inference.onnx_runtime import OnnxScorer
from fti.inference.verification import agrees, safe_predict

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("fti.inference")

PREFER = ("fastest", "native", "converted")
"""Scorer choices: the quickest verified candidate, the native model only, or the first verified
conversion."""
TIMING_ROWS = 65_536
"""For batch scoring, candidates are timed on this many rows (the sample repeated): closer to batch
sizes than a few thousand rows, where per-call overheads dominate."""
SERVING_ROWS = (1, 16)
"""For serving, candidates are timed on calls of one row and of a small dynamic batch: per-call
overheads dominate there (ONNX Runtime scores one HistGradientBoosting row ~29x cheaper than
scikit-learn, which lost to it on 65,536-row blocks on a loaded machine)."""
ROUNDS = {"batch": 3, "serving": 7}
"""Timing rounds. Each round times every candidate once per size, in an order rotated per round,
and a candidate's time is its median over rounds: a burst of load from another process slows one
round of every candidate alike instead of one candidate's whole measurement."""
CALLS = {"batch": 1, "serving": 20}
"""Calls per timing of one size (their mean is the per-call time), on distinct rows."""
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
    workload: str = "batch",
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
        ValidationError: ``prefer`` is not one of :data:`PREFER`; ``workload`` is not one of
            ``WORKLOADS``; ``sample`` is not a non-empty 2-D matrix.
    """
    import numpy as np

    check_prefer(prefer)
    if workload not in WORKLOADS:
        raise ValidationError(f"workload must be one of {WORKLOADS}, got {workload!r}")
    sample = np.asarray(sample)
    if sample.ndim != 2 or len(sample) == 0:
        raise ValidationError(
            f"sample must be a non-empty 2-D matrix of model inputs, got shape {sample.shape}"
        )
    native_model, predict_fn, key = _unwrap(model, predict_fn, cache_key)
    reference = {name: as_array(v) for name, v in predict_fn(native_model, sample).items()}
    native: Scorer = NativeScorer.of(native_model, predict_fn)
    if getattr(native, "fused", False) and not agrees(native.predict(sample), reference):
        log.warning("%s: one-pass predict_proba disagrees with predict; scoring in two passes", key)
        native = NativeScorer(native_model, predict_fn)
    if prefer == "native":
        return native
    if entry is None and cache_dir is not None and key is not None:
        entry = CacheEntry.of(cache_dir, key)
    candidates_of = builders(native_model)
    chosen_for = purpose(prefer, workload)
    winner = None if entry is None else entry.choice(chosen_for)
    if entry is not None and winner is not None:
        # an earlier run measured the candidates: re-verify only its winner on this sample
        if winner == "native":
            return native
        for build in candidates_of:
            if build.__name__ == winner:
                scorer = _try(build, native_model, sample, reference, entry)
                if scorer is not None:
                    measured = (entry.choice_record(chosen_for) or {}).get("timings")
                    _remember(entry, winner, scorer, sample, reference, native_model, measured)
                    return scorer
    candidates: list[tuple[str, Scorer]] = [("native", native)]
    for build in candidates_of:
        scorer = _try(build, native_model, sample, reference, entry)
        if scorer is not None:
            if prefer == "converted":  # remembered with its manifest: later starts skip sklearn
                if entry is not None:
                    entry.remember_choice(build.__name__, chosen_for)
                    _remember(entry, build.__name__, scorer, sample, reference, native_model)
                return scorer
            candidates.append((build.__name__, scorer))
    best = candidates[0]
    timings: dict[str, Any] | None = None
    if len(candidates) > 1:
        rows = sample if timing_sample is None else np.asarray(timing_sample)
        timings = measure(candidates, rows, workload)
        cost = timings["cost"]
        fastest = min(candidates[1:], key=lambda named: cost[named[0]])
        if cost[fastest[0]] <= MARGIN * cost["native"]:
            best = fastest
        timings["winner"] = best[0]
        log.info("%s: %s scorer chosen for %s on %s", key, best[0], workload, timings)
    if entry is not None:
        entry.remember_choice(best[0], chosen_for, timings)
        _remember(entry, best[0], best[1], sample, reference, native_model, timings)
    return best[1]


def _remember(
    entry: CacheEntry,
    builder: str,
    scorer: Scorer,
    sample: np.ndarray,
    reference: dict[str, np.ndarray],
    model: Any = None,
    timings: dict[str, Any] | None = None,
) -> None:
    """Record a converted winner so later loads can build it without the native model
    (:mod:`fti.inference.manifest`), with the model's ``classes_``; never fails the caller."""
    if not isinstance(scorer, OnnxScorer | CompiledLightGBMScorer):
        return
    from fti.inference import manifest

    try:  # rewritten on every verified pick, so a corrupt entry heals on the next native load
        manifest.write(
            entry,
            builder,
            scorer,
            sample,
            reference,
            classes=getattr(model, "classes_", None),
            timings=timings,
        )
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


def measure(candidates: list[tuple[str, Scorer]], sample: np.ndarray, workload: str) -> dict[str, Any]:
    """Per-call seconds of each candidate at the workload's sizes, measured interleaved.

    Returns:
        ``{"workload", "rows": sizes, "rounds", "seconds": {name: {size: median seconds per
        call}}, "cost": {name: sum over sizes}}``; the cheapest cost wins.
    """
    import numpy as np

    if workload == "serving":
        sizes = list(SERVING_ROWS)
        blocks = {size: _blocks(sample, size, CALLS[workload]) for size in sizes}
    else:
        reps = max(1, -(-TIMING_ROWS // len(sample)))
        matrix = np.ascontiguousarray(np.tile(sample, (reps, 1))[:TIMING_ROWS] if reps > 1 else sample)
        sizes = [len(matrix)]
        blocks = {len(matrix): [matrix]}
    for _, scorer in candidates:  # warm-up (thread pools, lazy initialisation)
        scorer.predict(blocks[sizes[0]][0][:100])
    runs: dict[str, dict[int, list[float]]] = {name: {size: [] for size in sizes} for name, _ in candidates}
    rounds = ROUNDS[workload]
    for round_ in range(rounds):
        shift = round_ % len(candidates)
        for name, scorer in candidates[shift:] + candidates[:shift]:
            for size in sizes:
                start = time.perf_counter()
                for block in blocks[size]:
                    scorer.predict(block)
                runs[name][size].append((time.perf_counter() - start) / len(blocks[size]))
    seconds = {
        name: {str(size): float(np.median(times)) for size, times in by_size.items()}
        for name, by_size in runs.items()
    }
    return {
        "workload": workload,
        "rows": sizes,
        "rounds": rounds,
        "seconds": seconds,
        "cost": {name: sum(by_size.values()) for name, by_size in seconds.items()},
    }


def _blocks(sample: np.ndarray, size: int, calls: int) -> list[np.ndarray]:
    """``calls`` contiguous blocks of ``size`` distinct rows of ``sample`` (wrapping around)."""
    import numpy as np

    index = np.arange(size * calls) % len(sample)
    rows = np.ascontiguousarray(sample[index])
    return [rows[i * size : (i + 1) * size] for i in range(calls)]
