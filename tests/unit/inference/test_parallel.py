"""ParallelScorer: pieces of a batch scored by single-threaded workers give the native outputs."""

from __future__ import annotations

import numpy as np
import pytest

from fti.inference.native import native_predict
from fti.inference.parallel import ParallelScorer
from fti.inference.selection import get_scorer
from tests.unit.inference._models import MODELS, X_TEST
from tests.unit.inference._models import assert_same as _assert_same


@pytest.mark.parametrize("name", ["rf", "hgb", "xgb", "lgb", "lgb_regressor"])
@pytest.mark.parametrize("prefer", ["native", "converted"])
def test_parallel_scorer_gives_the_same_outputs_with_one_thread_per_worker(name: str, prefer: str) -> None:
    import copy

    import threadpoolctl

    def openmp_threads() -> list[int]:
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]

    model = copy.deepcopy(MODELS[name][0])
    scorer = get_scorer(model, sample=X_TEST[:500], prefer=prefer)
    expected = scorer.predict(X_TEST)
    before = openmp_threads()
    parallel = ParallelScorer(scorer, workers=2, piece_rows=701)  # 5 pieces, the last one short
    try:
        assert parallel.kind == scorer.kind
        got = parallel.predict(X_TEST)
        _assert_same(got, native_predict(MODELS[name][0], X_TEST))
        if prefer == "native":  # the same library code on the same rows: bit-identical
            for output in expected:
                np.testing.assert_array_equal(got[output], expected[output])
        assert parallel.predict(X_TEST[:3])["predict"].shape == (3,)
        # the workers run one OpenMP thread each; the rest of the process keeps its threads
        workers = list(parallel._pool.map(lambda _: openmp_threads(), range(4)))
        assert all(threads and set(threads) == {1} for threads in workers)
        assert openmp_threads() == before
        if prefer == "native" and "n_jobs" in model.get_params():
            assert model.get_params()["n_jobs"] == 1  # library threads off for native models
    finally:
        parallel.close()


def test_parallel_scorer_submits_queue_in_order_and_raise_their_own_errors() -> None:
    model = MODELS["rf"][0]
    parallel = ParallelScorer(
        get_scorer(model, sample=X_TEST[:500], prefer="native"), workers=2, piece_rows=97
    )
    try:
        halves = [X_TEST[: len(X_TEST) // 2], X_TEST[len(X_TEST) // 2 :]]
        pending = [parallel.submit(half) for half in halves]  # both in flight at once
        outputs = [scores.result() for scores in pending]
        for half, got in zip(halves, outputs, strict=True):
            _assert_same(got, native_predict(model, half))
        wrong = parallel.submit(X_TEST[:10, :3])  # too few features: the piece's own error
        with pytest.raises(ValueError, match="features"):
            wrong.result()
    finally:
        parallel.close()
