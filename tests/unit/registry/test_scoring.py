"""Scorers: every converted or compiled scorer reproduces the native predictions, or is not used."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fti.errors import SchemaError, ValidationError
from fti.registry.scoring import ParallelScorer, get_scorer, native_predict, to_matrix

rng = np.random.default_rng(7)
X_TRAIN = rng.normal(size=(600, 6))
Y_CLASS = (X_TRAIN[:, 0] + X_TRAIN[:, 1] * X_TRAIN[:, 2] > 0).astype(np.int64)
Y_MULTI = np.digitize(X_TRAIN[:, 0] + X_TRAIN[:, 3], [-0.7, 0.7])
Y_VALUE = X_TRAIN[:, 0] * 3 + np.sin(X_TRAIN[:, 1]) * 10
X_TEST = rng.normal(size=(3000, 6))


def _models() -> dict[str, tuple[Any, set[str]]]:
    """name -> (fitted model, scorer kinds that may be chosen with prefer='converted')."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    lgb_options = {"n_estimators": 15, "num_leaves": 8, "verbose": -1, "n_jobs": 1}
    return {
        "rf": (RandomForestClassifier(12, max_depth=5, random_state=0).fit(X_TRAIN, Y_CLASS), {"onnx"}),
        "rf_multiclass": (
            RandomForestClassifier(8, max_depth=4, random_state=0).fit(X_TRAIN, Y_MULTI),
            {"onnx"},
        ),
        "rf_regressor": (
            RandomForestRegressor(8, max_depth=5, random_state=0).fit(X_TRAIN, Y_VALUE),
            {"onnx"},
        ),
        "gb": (GradientBoostingClassifier(n_estimators=15, max_depth=3).fit(X_TRAIN, Y_CLASS), {"onnx"}),
        "pipeline": (
            make_pipeline(StandardScaler(), RandomForestClassifier(8, max_depth=4, random_state=0)).fit(
                X_TRAIN, Y_CLASS
            ),
            {"onnx"},
        ),
        "hgb": (HistGradientBoostingClassifier(max_iter=15).fit(X_TRAIN, Y_CLASS), {"onnx"}),
        "hgb_multiclass": (HistGradientBoostingClassifier(max_iter=10).fit(X_TRAIN, Y_MULTI), {"onnx"}),
        "hgb_regressor": (HistGradientBoostingRegressor(max_iter=15).fit(X_TRAIN, Y_VALUE), {"onnx"}),
        "xgb": (xgb.XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1).fit(X_TRAIN, Y_CLASS), {"native"}),
        "lgb": (lgb.LGBMClassifier(**lgb_options).fit(X_TRAIN, Y_CLASS), {"compiled", "onnx"}),
        "lgb_multiclass": (lgb.LGBMClassifier(**lgb_options).fit(X_TRAIN, Y_MULTI), {"compiled", "onnx"}),
        "lgb_regressor": (lgb.LGBMRegressor(**lgb_options).fit(X_TRAIN, Y_VALUE), {"compiled", "onnx"}),
    }


MODELS = _models()


def _assert_same(got: dict[str, np.ndarray], expected: dict[str, Any]) -> None:
    assert set(got) == set(expected)
    if np.asarray(expected["predict"]).dtype.kind == "f":  # regression: float32 trees are allowed
        np.testing.assert_allclose(got["predict"], expected["predict"], rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(got["predict"], np.asarray(expected["predict"]))
    if "predict_proba" in expected:
        np.testing.assert_allclose(got["predict_proba"], expected["predict_proba"], rtol=0, atol=1e-5)
        assert got["predict_proba"].dtype == np.asarray(expected["predict_proba"]).dtype


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_scorer_agrees_with_native(name: str) -> None:
    model, converted_kinds = MODELS[name]
    expected = native_predict(model, X_TEST)
    converted = get_scorer(model, sample=X_TEST[:500], prefer="converted")
    assert converted.kind in converted_kinds
    _assert_same(converted.predict(X_TEST), expected)
    fastest = get_scorer(model, sample=X_TEST[:500])
    _assert_same(fastest.predict(X_TEST), expected)
    native = get_scorer(model, sample=X_TEST[:500], prefer="native")
    assert native.kind == "native"
    _assert_same(native.predict(X_TEST), expected)


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


def test_labels_of_a_converted_scorer_keep_their_type() -> None:
    from sklearn.ensemble import RandomForestClassifier

    labels = np.where(Y_CLASS == 1, "fraud", "ok")
    model = RandomForestClassifier(5, max_depth=3, random_state=0).fit(X_TRAIN, labels)
    scorer = get_scorer(model, sample=X_TEST[:300], prefer="converted")
    out = scorer.predict(X_TEST)
    assert out["predict"].tolist() == model.predict(X_TEST).tolist()


@pytest.mark.parametrize("family", ["sklearn", "xgboost", "lightgbm"])
def test_model_fitted_on_a_dataframe_is_scored_without_warnings(family: str) -> None:
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import RandomForestClassifier

    frame = pd.DataFrame(X_TRAIN, columns=[f"f{i}" for i in range(6)])
    model = {
        "sklearn": lambda: RandomForestClassifier(5, max_depth=3, random_state=0),
        "xgboost": lambda: xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1),
        "lightgbm": lambda: lgb.LGBMClassifier(n_estimators=8, num_leaves=6, verbose=-1, n_jobs=1),
    }[family]().fit(frame, Y_CLASS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scorer = get_scorer(model, sample=X_TEST[:200], prefer="native")
        out = scorer.predict(X_TEST)
    named = pd.DataFrame(X_TEST, columns=frame.columns)
    np.testing.assert_array_equal(out["predict"], model.predict(named))
    np.testing.assert_array_equal(out["predict_proba"], model.predict_proba(named))


def test_mismatch_falls_back_to_native() -> None:
    model = MODELS["rf"][0]

    def shifted(m: Any, X: Any) -> dict[str, Any]:
        # a reference no converted scorer can reproduce: every candidate must be rejected
        out = native_predict(m, X)
        out["predict_proba"] = out["predict_proba"] * 0.999 + 0.0005
        return out

    scorer = get_scorer(model, sample=X_TEST[:300], prefer="converted", predict_fn=shifted)
    assert scorer.kind == "native"
    np.testing.assert_array_equal(
        scorer.predict(X_TEST[:50])["predict_proba"], shifted(model, X_TEST[:50])["predict_proba"]
    )


def test_unsupported_model_gets_the_native_scorer() -> None:
    class Threshold:
        def predict(self, X: np.ndarray) -> np.ndarray:
            return (X[:, 0] > 0).astype(np.int64)

    scorer = get_scorer(Threshold(), sample=X_TEST[:10], prefer="converted")
    assert scorer.kind == "native"
    np.testing.assert_array_equal(scorer.predict(X_TEST)["predict"], (X_TEST[:, 0] > 0).astype(np.int64))


def test_converted_model_is_cached_on_disk(tmp_path: Path) -> None:
    model = MODELS["rf"][0]
    first = get_scorer(model, sample=X_TEST[:200], prefer="converted", cache_dir=tmp_path, cache_key="rf-v1")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert first.kind == "onnx" and len(files) == 1 and files[0].endswith(".onnx")
    stamp = (tmp_path / files[0]).stat().st_mtime_ns
    second = get_scorer(model, sample=X_TEST[:200], prefer="converted", cache_dir=tmp_path, cache_key="rf-v1")
    assert second.kind == "onnx" and (tmp_path / files[0]).stat().st_mtime_ns == stamp
    _assert_same(second.predict(X_TEST), native_predict(model, X_TEST))


def test_fastest_choice_is_remembered(tmp_path: Path) -> None:
    model = MODELS["lgb"][0]
    first = get_scorer(model, sample=X_TEST[:300], cache_dir=tmp_path, cache_key="lgb-v1")
    choice = tmp_path / f"{next(p.name for p in tmp_path.glob('*.choice'))}"
    winner = choice.read_text()
    assert winner in {"native", "_build_lleaves", "_build_onnx_lightgbm"}
    choice.write_text("native")  # later runs take the recorded winner without timing again
    assert get_scorer(model, sample=X_TEST[:300], cache_dir=tmp_path, cache_key="lgb-v1").kind == "native"
    choice.write_text("_build_onnx_lightgbm")
    again = get_scorer(model, sample=X_TEST[:300], cache_dir=tmp_path, cache_key="lgb-v1")
    assert again.kind == "onnx"
    _assert_same(again.predict(X_TEST), native_predict(model, X_TEST))
    assert first.kind in {"native", "compiled", "onnx"}


def test_corrupted_cache_entry_is_not_trusted(tmp_path: Path) -> None:
    model = MODELS["rf"][0]
    get_scorer(model, sample=X_TEST[:200], prefer="converted", cache_dir=tmp_path, cache_key="rf-v1")
    (cached,) = tmp_path.iterdir()
    cached.write_bytes(b"not an onnx model")
    scorer = get_scorer(model, sample=X_TEST[:200], prefer="converted", cache_dir=tmp_path, cache_key="rf-v1")
    _assert_same(scorer.predict(X_TEST), native_predict(model, X_TEST))


def test_bad_arguments() -> None:
    model = MODELS["rf"][0]
    with pytest.raises(ValidationError, match="prefer must be one of"):
        get_scorer(model, sample=X_TEST, prefer="gpu")
    with pytest.raises(ValidationError, match="sample must be a non-empty 2-D matrix"):
        get_scorer(model, sample=X_TEST[:, 0])
    with pytest.raises(ValidationError, match="sample must be a non-empty 2-D matrix"):
        get_scorer(model, sample=X_TEST[:0])


def test_to_matrix_from_arrow_and_pandas() -> None:
    chunk = pa.table(
        {"a": [1.5, None], "b": pa.array([1, 2], pa.int32()), "c": [True, False], "key": ["x", "y"]}
    )
    table = pa.concat_tables([chunk, chunk])  # several chunks per column
    matrix = to_matrix(table, ["c", "a", "b"])
    expected = np.array([[1.0, 1.5, 1.0], [0.0, np.nan, 2.0]] * 2)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype == np.float64 and matrix.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(to_matrix(table.to_pandas(), ["c", "a", "b"]), expected)
    np.testing.assert_array_equal(to_matrix(table.to_batches()[0], ["b"]), [[1.0], [2.0]])
    assert to_matrix(table.slice(0, 0), ["a", "b"]).shape == (0, 2)
    with pytest.raises(SchemaError, match=r"column\(s\) \['key'\] are not numeric"):
        to_matrix(table, ["a", "key"])
    with pytest.raises(SchemaError, match=r"column\(s\) \['zzz'\] missing"):
        to_matrix(table, ["a", "zzz"])
    with pytest.raises(ValidationError, match="expected a pyarrow Table or pandas DataFrame"):
        to_matrix([[1.0]], ["a"])
