"""Scoring large batches on every core: pieces pulled by one single-threaded worker per core.

A library's own threads split each call statically, one share per core, so when another thread
of the process (a batch job's reader or writer) takes a core, the whole call waits for the share
that lost it. Pieces pulled by workers balance themselves instead. The libraries release the GIL
while they score, so the workers run in parallel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fti.inference.base import Scorer, threads
from fti.inference.compiled import CompiledLightGBMScorer
from fti.inference.native import family
from fti.inference.onnx_runtime import OnnxScorer

if TYPE_CHECKING:
    from concurrent.futures import Future

    import numpy as np

PIECE_ROWS = 16_384
"""Rows per piece of a :class:`ParallelScorer`: small enough to balance, large enough that the
per-call overhead of every scorer stays negligible (measured: same throughput as 64k pieces)."""


class ParallelScorer:
    """Scores large batches as pieces pulled by one worker thread per core, each piece through a
    single-threaded copy of a scorer (see the module docstring)."""

    def __init__(self, scorer: Scorer, workers: int | None = None, piece_rows: int = PIECE_ROWS) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.kind = scorer.kind
        self.workers = workers or threads()
        self.piece_rows = piece_rows
        self._scorer = single_threaded(scorer)
        self._pool = ThreadPoolExecutor(
            self.workers, thread_name_prefix="fti-score", initializer=_one_openmp_thread
        )

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        return self.submit(X).result()

    def submit(self, X: np.ndarray) -> Scores:
        """Queue the pieces of ``X`` behind those already submitted; the scores are collected
        with :meth:`Scores.result`."""
        pieces = [X[i : i + self.piece_rows] for i in range(0, len(X), self.piece_rows)]
        return Scores([self._pool.submit(self._scorer.predict, piece) for piece in pieces])

    def close(self) -> None:
        """Stop the workers; pieces not started yet are dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class Scores:
    """The pending outputs of one :meth:`ParallelScorer.submit`."""

    def __init__(self, parts: list[Future[dict[str, np.ndarray]]]) -> None:
        self._parts = parts

    def result(self) -> dict[str, np.ndarray]:
        """The outputs of every piece, in order (waits for them; raises a piece's error)."""
        import numpy as np

        parts = [part.result() for part in self._parts]
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def single_threaded(scorer: Scorer) -> Scorer:
    """``scorer`` restricted to one thread per call (its model's ``n_jobs`` set to 1 for native
    scorers; OpenMP-based models follow the calling thread's limit, see :class:`ParallelScorer`)."""
    if isinstance(scorer, OnnxScorer):
        return scorer.with_threads(1)
    if isinstance(scorer, CompiledLightGBMScorer):
        scorer.threads = 1
        return scorer
    model = getattr(scorer, "model", None)
    params = getattr(model, "get_params", None)
    if callable(params) and "n_jobs" in params():
        model.set_params(n_jobs=1)  # type: ignore[union-attr]
    elif model is not None and family(model) == "xgboost" and hasattr(model, "set_param"):
        model.set_param({"nthread": 1})  # a bare Booster
    return scorer


def _one_openmp_thread() -> None:
    """Limit OpenMP parallel regions started from this (worker) thread to one thread: the limit
    is per calling thread, so the rest of the process keeps its threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # no OpenMP-based library installed either
        return
    threadpool_limits(1, user_api="openmp")
