"""Choosing a scorer: every converted or compiled scorer reproduces the native predictions, or is
not used; the winner and conversions are cached."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fti.errors import ValidationError
from fti.inference.native import native_predict
from fti.inference.selection import ROUNDS, SERVING_ROWS, TIMING_ROWS, get_scorer
from tests.unit.inference._models import MODELS, X_TEST, X_TRAIN, Y_CLASS
from tests.unit.inference._models import assert_same as _assert_same


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
    files = sorted(p.name for p in tmp_path.glob("*.onnx"))
    assert first.kind == "onnx" and len(files) == 1
    # the first verified conversion is remembered apart from the measured winners
    assert [p.name.split(".", 1)[1] for p in tmp_path.glob("*.choice")] == ["converted.choice"]
    stamp = (tmp_path / files[0]).stat().st_mtime_ns
    second = get_scorer(model, sample=X_TEST[:200], prefer="converted", cache_dir=tmp_path, cache_key="rf-v1")
    assert second.kind == "onnx" and (tmp_path / files[0]).stat().st_mtime_ns == stamp
    _assert_same(second.predict(X_TEST), native_predict(model, X_TEST))


def test_fastest_choice_is_remembered(tmp_path: Path) -> None:
    model = MODELS["lgb"][0]
    first = get_scorer(model, sample=X_TEST[:300], cache_dir=tmp_path, cache_key="lgb-v1")
    [choice] = tmp_path.glob("*.choice")
    record = json.loads(choice.read_text())
    winner = record["winner"]
    assert winner in {"native", "_build_lleaves", "_build_onnx_lightgbm"}
    # the timings it was chosen on are recorded beside it: every candidate, at the batch size
    timings = record["timings"]
    assert record["purpose"] == timings["workload"] == "batch" and timings["winner"] == winner
    assert timings["rows"] == [TIMING_ROWS] and set(timings["seconds"]) == {"native"} | set(timings["cost"])
    assert min(timings["cost"], key=timings["cost"].get) == winner or winner == "native"
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
    (cached,) = tmp_path.glob("*.onnx")
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


def test_registry_scoring_still_names_the_moved_scorers() -> None:
    """``fti.registry.scoring`` (named in older READMEs) re-exports the moved objects unchanged."""
    import fti.inference
    from fti.inference import parallel
    from fti.inference.entry import version_key
    from fti.registry import scoring

    assert scoring.get_scorer is fti.inference.get_scorer is get_scorer
    assert scoring.to_matrix is fti.inference.to_matrix
    assert scoring.ParallelScorer is parallel.ParallelScorer is fti.inference.ParallelScorer
    assert scoring.cache_key is version_key
    assert scoring.PREFER == fti.inference.PREFER == ("fastest", "native", "converted")


def test_importing_inference_loads_no_model_library() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "import fti.inference, fti.inference.cache, fti.inference.selection, fti.registry.scoring\n"
        "heavy = ('numpy', 'pandas', 'sklearn', 'onnxruntime', 'lightgbm', 'xgboost', 'lleaves', 'torch')\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_serving_times_the_candidates_at_request_sizes(tmp_path: Path) -> None:
    """Issue 21: "fastest" for serving is timed on calls of one row and a small batch, interleaved
    over rounds, and remembered apart from the batch winner. A HistGradientBoosting row costs
    scikit-learn a ~millisecond of per-call overhead and ONNX Runtime tens of microseconds."""
    model = MODELS["hgb"][0]
    served = get_scorer(model, sample=X_TEST[:500], cache_dir=tmp_path, cache_key="hgb", workload="serving")
    assert served.kind == "onnx"
    _assert_same(served.predict(X_TEST[:1]), native_predict(model, X_TEST[:1]))
    [serving_file] = tmp_path.glob("*.serving.choice")
    assert not [p for p in tmp_path.glob("*.choice") if p != serving_file]  # no batch winner yet
    record = json.loads(serving_file.read_text())
    timings = record["timings"]
    assert record["winner"] == timings["winner"] == "_build_onnx_hgb"
    assert timings["workload"] == "serving" and timings["rows"] == list(SERVING_ROWS)
    assert timings["rounds"] == ROUNDS["serving"]
    native, onnx = timings["seconds"]["native"], timings["seconds"]["_build_onnx_hgb"]
    assert set(native) == set(onnx) == {"1", "16"} and onnx["1"] < native["1"]
    # a batch job of the same model times at its own size and keeps its own winner
    get_scorer(model, sample=X_TEST[:500], cache_dir=tmp_path, cache_key="hgb")
    batch = json.loads(next(p for p in tmp_path.glob("*.choice") if p != serving_file).read_text())
    assert batch["timings"]["rows"] == [TIMING_ROWS]
    assert json.loads(serving_file.read_text()) == record


def test_an_unknown_workload_is_refused() -> None:
    with pytest.raises(ValidationError, match="workload must be one of"):
        get_scorer(MODELS["rf"][0], sample=X_TEST[:10], workload="interactive")
