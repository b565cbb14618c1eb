"""The scorer cache: a cached verified conversion is served without loading the native model (cold
start, memory); anything corrupt, mismatching or tampered falls back to the native model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

import fti
from fti.errors import IntegrityError
from fti.inference import manifest
from fti.inference.cache import FallbackScorer, ScorerCache
from fti.inference.compiled import LLEAVES_LIBRARY
from fti.inference.entry import CacheEntry, version_key
from fti.inference.native import NativeScorer
from fti.serving.repository import load_model

FEATURES = ["a", "b", "c", "d"]
WINNER = "_build_onnx_hgb"


def _fit(seed: int) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    X, y = make_classification(400, n_features=4, n_informative=3, n_redundant=0, random_state=seed)
    return HistGradientBoostingClassifier(max_iter=15, random_state=seed).fit(X, y), X


def _register(project: fti.Project, seed: int = 0) -> tuple[Any, Any, np.ndarray]:
    model, X = _fit(seed)
    example = pd.DataFrame(X[:50], columns=FEATURES)
    mv = project.model_registry.register("hgb", model, input_example=example)
    project.model_registry.set_alias("hgb", mv.version, "production")
    return mv, model, X


def _cache(project: fti.Project) -> Path:
    return ScorerCache.at_home(project.settings.home).directory


def _entry(cache: Path, key: str) -> CacheEntry:
    return CacheEntry.of(cache, key)


def _deploy_with_onnx_winner(project: fti.Project, mv: Any, scorer: str = "fastest") -> str:
    """Deploy with ONNX as the remembered winner (timing is machine-dependent; the winner is
    re-verified against the native model at deploy, which records the manifest)."""
    key = version_key(mv)
    _cache(project).mkdir(parents=True, exist_ok=True)
    _choice(project, key).write_text(WINNER)
    project.serving.deploy("hgb", model="hgb@production", scorer=scorer)
    return key


def _trusted(project: fti.Project, mv: Any) -> Any:
    """The converted scorer the cache would rebuild from ``mv``'s manifest (None: refused)."""
    return manifest.load(ScorerCache.at_home(project.settings.home).entry(mv), "serving")


def _choice(project: fti.Project, key: str) -> Path:
    return _entry(_cache(project), key).path(".serving.choice")  # the winner for serving


def _native(model: HistGradientBoostingClassifier, X: np.ndarray) -> dict[str, np.ndarray]:
    return {"predict": model.predict(X), "predict_proba": model.predict_proba(X)}


def _assert_native(out: dict[str, Any], model: HistGradientBoostingClassifier, X: np.ndarray) -> None:
    expected = _native(model, X)
    np.testing.assert_array_equal(np.asarray(out["predict"]), expected["predict"])
    np.testing.assert_allclose(np.asarray(out["predict_proba"]), expected["predict_proba"], atol=1e-5)


SERVER_SCRIPT = """
import asyncio, json, sys
import numpy as np
import fti
from fti.errors import IntegrityError
from fti.serving.metrics import ServerMetrics
from fti.serving.repository import ModelRepository

async def main():
    project = fti.connect(home=sys.argv[1])
    repo = ModelRepository(project, ServerMetrics(), poll_interval_s=60)
    await repo.start()
    loaded = await repo.acquire("hgb")
    X = np.asarray(json.loads(sys.argv[2]), dtype=np.float64)
    out = await asyncio.to_thread(loaded.predict, X)
    repo.release(loaded)
    await repo.stop()
    heavy = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("sklearn", "skops", "torch")})
    print(json.dumps({"kind": loaded.scorer_kind, "heavy": heavy,
                      "predict": np.asarray(out["predict"]).tolist(),
                      "predict_proba": np.asarray(out["predict_proba"]).tolist()}))
    project.close()

asyncio.run(main())
"""


def _serve_in_fresh_process(home: Path, X: np.ndarray) -> dict[str, Any]:
    """Serve the ``hgb`` deployment in a new process: its outputs on ``X`` and what it imported."""
    done = subprocess.run(
        [sys.executable, "-c", SERVER_SCRIPT, str(home), json.dumps(X.tolist())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_cached_onnx_winner_is_served_without_importing_sklearn(sqlite_project: fti.Project) -> None:
    mv, model, X = _register(sqlite_project)
    key = _deploy_with_onnx_winner(sqlite_project, mv)
    # the documented place, shared by servers and batch jobs of this home (and by older releases)
    assert _cache(sqlite_project) == sqlite_project.settings.home / "cache" / "scorers"
    recorded = json.loads(_entry(_cache(sqlite_project), key).path(manifest.SUFFIX).read_text())
    assert recorded["builder"] == WINNER and recorded["artifact"] in (".hgb32.onnx", ".hgb64.onnx")
    result = _serve_in_fresh_process(sqlite_project.settings.home, X[100:160])
    assert result["heavy"] == [] and result["kind"] == "onnx"
    _assert_native(result, model, X[100:160])


def test_without_a_manifest_the_server_loads_the_native_model(sqlite_project: fti.Project) -> None:
    mv, model, X = _register(sqlite_project)
    _deploy_with_onnx_winner(sqlite_project, mv)
    for file in _cache(sqlite_project).glob(f"*{manifest.SUFFIX}"):
        file.unlink()  # a cache from before manifests existed: the previous behaviour
    result = _serve_in_fresh_process(sqlite_project.settings.home, X[:30])
    assert "sklearn" in result["heavy"] and result["kind"] == "onnx"
    _assert_native(result, model, X[:30])


def test_no_cache_keeps_the_current_behaviour(sqlite_project: fti.Project) -> None:
    mv, model, X = _register(sqlite_project)
    spec = sqlite_project.serving.deploy("hgb", model="hgb@production").spec
    assert not isinstance(load_model(sqlite_project, spec).scorer, FallbackScorer) or (
        # the deploy may have measured ONNX as the winner and recorded it: then it is reused
        ScorerCache.at_home(sqlite_project.settings.home).entry(mv).choice("serving") == WINNER
    )
    for file in _cache(sqlite_project).iterdir():
        file.unlink()
    loaded = load_model(sqlite_project, spec)
    assert not isinstance(loaded.scorer, FallbackScorer)
    _assert_native(loaded.predict(X[:40]), model, X[:40])
    native = sqlite_project.serving.deploy("hgb", model="hgb@production", scorer="native").spec
    assert load_model(sqlite_project, native).scorer_kind == "native"


def test_cached_scorer_is_used_in_process_and_falls_back_at_predict_time(
    sqlite_project: fti.Project,
) -> None:
    mv, model, X = _register(sqlite_project)
    _deploy_with_onnx_winner(sqlite_project, mv)
    loaded = load_model(sqlite_project, sqlite_project.serving.get("hgb").spec)
    assert isinstance(loaded.scorer, FallbackScorer) and loaded.scorer_kind == "onnx"
    _assert_native(loaded.predict(X[:25]), model, X[:25])

    class _LostSession:  # a converted scorer that fails at predict time
        kind = "onnx"

        def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
            raise RuntimeError("onnxruntime session lost")

    fallback = FallbackScorer(
        _LostSession(), lambda: NativeScorer(mv.load(), mv.flavor_impl.predict), "hgb v1"
    )
    _assert_native(fallback.predict(X[:25]), model, X[:25])
    assert fallback.kind == "native"
    _assert_native(fallback.predict(X[25:50]), model, X[25:50])  # stays on native


def _corrupt_graph(cache: Path, key: str, recorded: dict[str, Any]) -> None:
    _entry(cache, key).path(recorded["artifact"]).write_bytes(b"not an onnx model")


def _tamper_reference(cache: Path, key: str, recorded: dict[str, Any]) -> None:
    recorded["reference"]["predict"]["data"] = [1 - v for v in recorded["reference"]["predict"]["data"]]
    _entry(cache, key).path(manifest.SUFFIX).write_text(json.dumps(recorded))


def _truncate_manifest(cache: Path, key: str, recorded: dict[str, Any]) -> None:
    path = _entry(cache, key).path(manifest.SUFFIX)
    path.write_text(path.read_text()[:100])


def _native_winner(cache: Path, key: str, recorded: dict[str, Any]) -> None:
    _entry(cache, key).path(".serving.choice").write_text("native")


@pytest.mark.parametrize(
    "damage",
    [_corrupt_graph, _tamper_reference, _truncate_manifest, _native_winner],
    ids=lambda f: f.__name__,
)
def test_a_corrupt_or_mismatching_cache_entry_falls_back_to_native(
    sqlite_project: fti.Project, damage: Any
) -> None:
    mv, model, X = _register(sqlite_project)
    key = _deploy_with_onnx_winner(sqlite_project, mv)
    cache = _cache(sqlite_project)
    damage(cache, key, json.loads(_entry(cache, key).path(manifest.SUFFIX).read_text()))
    assert _trusted(sqlite_project, mv) is None
    assert ScorerCache.at_home(sqlite_project.settings.home).load(mv) is None
    loaded = load_model(sqlite_project, sqlite_project.serving.get("hgb").spec)
    assert not isinstance(loaded.scorer, FallbackScorer)  # the native model was loaded
    _assert_native(loaded.predict(X[:40]), model, X[:40])


def test_a_new_model_version_never_reuses_another_versions_conversion(sqlite_project: fti.Project) -> None:
    mv, _, _ = _register(sqlite_project, seed=0)
    key = _deploy_with_onnx_winner(sqlite_project, mv)
    cache = _cache(sqlite_project)
    mv2, model2, X2 = _register(sqlite_project, seed=1)
    key2 = version_key(mv2)
    assert key2 != key and _trusted(sqlite_project, mv2) is None
    # even a copied manifest of another model is rejected: its graph file is not this key's
    _entry(cache, key2).path(manifest.SUFFIX).write_text(_entry(cache, key).path(manifest.SUFFIX).read_text())
    _choice(sqlite_project, key2).write_text(WINNER)
    assert _trusted(sqlite_project, mv2) is None
    loaded = load_model(sqlite_project, sqlite_project.serving.get("hgb").spec, version=int(mv2.version))
    assert loaded.version == int(mv2.version)
    _assert_native(loaded.predict(X2[:40]), model2, X2[:40])


def test_tampered_artifacts_fail_to_load_even_with_a_cached_conversion(sqlite_project: fti.Project) -> None:
    mv, _, _ = _register(sqlite_project)
    _deploy_with_onnx_winner(sqlite_project, mv)
    assert _trusted(sqlite_project, mv) is not None
    stored = Path(sqlite_project.settings.resolved_artifacts_url) / mv.artifact_prefix
    for path in [p for p in stored.rglob("*") if p.is_file()]:
        path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match="does not match its recorded digest"):
        load_model(sqlite_project, sqlite_project.serving.get("hgb").spec)


def test_a_compiled_lightgbm_winner_is_rebuilt_without_lightgbm(sqlite_project: fti.Project) -> None:
    """The lleaves library is cached with a manifest: a server (or batch job) rebuilds it without
    importing LightGBM or scikit-learn, and refuses a library whose digest changed."""
    import lightgbm as lgb

    X, y = make_classification(400, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    labels = np.where(y == 1, "fraud", "ok")  # string classes round-trip through the manifest
    model = lgb.LGBMClassifier(n_estimators=12, num_leaves=6, verbose=-1).fit(
        pd.DataFrame(X, columns=FEATURES), labels
    )
    mv = sqlite_project.model_registry.register(
        "lgbm", model, input_example=pd.DataFrame(X[:50], columns=FEATURES)
    )
    key = version_key(mv)
    cache = _cache(sqlite_project)
    cache.mkdir(parents=True, exist_ok=True)
    _choice(sqlite_project, key).write_text("_build_lleaves")
    chosen = ScorerCache.at_home(sqlite_project.settings.home).build(mv, mv.load())
    assert chosen.kind == "compiled"
    recorded = json.loads(_entry(cache, key).path(manifest.SUFFIX).read_text())
    assert (recorded["kind"], recorded["classes"]) == ("compiled", ["fraud", "ok"])

    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "import fti\n"
        "from fti.inference.cache import ScorerCache\n"
        "project = fti.connect(home=sys.argv[1])\n"
        "scorer = ScorerCache.at_home(sys.argv[1]).load(project.model_registry.get_model(sys.argv[2]))\n"
        "out = scorer.predict(np.asarray(json.loads(sys.argv[3])))\n"
        "print(json.dumps({'kind': scorer.kind, 'classes': scorer.classes,\n"
        "                  'predict': out['predict'].tolist(), 'proba': out['predict_proba'].tolist(),\n"
        "                  'imported': sorted(m for m in ('lightgbm', 'sklearn') if m in sys.modules)}))\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(sqlite_project.settings.home),
            "lgbm:1",
            json.dumps(X[:30].tolist()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    named = pd.DataFrame(X[:30], columns=FEATURES)
    assert (result["kind"], result["classes"], result["imported"]) == ("compiled", ["fraud", "ok"], [])
    assert result["predict"] == model.predict(named).tolist()
    np.testing.assert_allclose(result["proba"], model.predict_proba(named), rtol=0, atol=1e-9)

    library = _entry(cache, key).path(LLEAVES_LIBRARY)
    library.write_bytes(library.read_bytes() + b"\0")
    assert _trusted(sqlite_project, mv) is None


def _plant_other_versions_entry(
    project: fti.Project,
) -> tuple[Any, Any, np.ndarray, CacheEntry, dict[str, Any]]:
    """The attack of issue 19 item 23: version 1's cached ONNX graph copied into version 2's
    cache entry, with version 1's manifest re-keyed to version 2's entry."""
    mv1, _, _ = _register(project, seed=0)
    key1 = _deploy_with_onnx_winner(project, mv1)
    cache = _cache(project)
    mv2, model2, X2 = _register(project, seed=1)  # production moves to version 2
    source, target = _entry(cache, key1), _entry(cache, version_key(mv2))
    recorded = json.loads(source.path(manifest.SUFFIX).read_text())
    target.path(recorded["artifact"]).write_bytes(source.path(recorded["artifact"]).read_bytes())
    recorded["key"] = target.stem
    target.path(manifest.SUFFIX).write_text(json.dumps(recorded))
    target.path(".serving.choice").write_text(WINNER)
    return mv2, model2, X2, target, recorded


def test_another_versions_conversion_copied_and_rekeyed_is_refused(sqlite_project: fti.Project) -> None:
    """Version 2 is served by its own model, never by version 1's copied conversion: the entry
    is bound to the catalog's artifact digests of the version it was made from."""
    mv2, model2, X2, _, _ = _plant_other_versions_entry(sqlite_project)
    assert ScorerCache.at_home(sqlite_project.settings.home).load(mv2) is None
    loaded = load_model(sqlite_project, sqlite_project.serving.get("hgb").spec)
    assert loaded.version == int(mv2.version)
    _assert_native(loaded.predict(X2[:200]), model2, X2[:200])


def test_a_manifest_forged_to_name_this_version_is_refused_without_the_key(
    sqlite_project: fti.Project,
) -> None:
    """Rewriting the copied manifest's binding to version 2's digests does not help: a manifest
    is signed with a key derived from the secret key (FTI_SECRET_KEY / $FTI_HOME/secret.key)."""
    mv2, model2, X2, target, recorded = _plant_other_versions_entry(sqlite_project)
    recorded["model"] = {"name": mv2.name, "version": int(mv2.version), "artifacts": dict(mv2.artifacts)}
    target.path(manifest.SUFFIX).write_text(json.dumps(recorded))
    assert ScorerCache.at_home(sqlite_project.settings.home).load(mv2) is None
    loaded = load_model(sqlite_project, sqlite_project.serving.get("hgb").spec)
    _assert_native(loaded.predict(X2[:200]), model2, X2[:200])


def test_a_compiled_library_planted_in_the_cache_is_never_loaded(sqlite_project: fti.Project) -> None:
    """A forged compiled forest (machine code) put where a version's library would be cached is
    not loaded: only a library whose digest a signed manifest records is; this one is rebuilt."""
    import lightgbm as lgb

    def fit(seed: int) -> tuple[Any, Any]:
        X, y = make_classification(400, n_features=4, n_informative=3, n_redundant=0, random_state=seed)
        model = lgb.LGBMClassifier(n_estimators=10, num_leaves=6, verbose=-1).fit(
            pd.DataFrame(X, columns=FEATURES), y
        )
        mv = sqlite_project.model_registry.register(
            "lgbm", model, input_example=pd.DataFrame(X[:50], columns=FEATURES)
        )
        return mv, X

    cache = ScorerCache.at_home(sqlite_project.settings.home)
    other, _ = fit(1)
    assert cache.build(other, other.load(), prefer="converted").kind == "compiled"
    forged = cache.entry(other).path(LLEAVES_LIBRARY).read_bytes()  # another forest's machine code
    mv, X = fit(0)
    planted = cache.entry(mv).path(LLEAVES_LIBRARY)
    planted.write_bytes(forged)
    scorer = cache.build(mv, mv.load(), prefer="converted")
    assert scorer.kind == "compiled"  # the planted library was not used: a fresh one was compiled
    assert planted.read_bytes() != forged
    named = pd.DataFrame(X[:100], columns=FEATURES)
    np.testing.assert_allclose(
        scorer.predict(X[:100])["predict_proba"], mv.load().predict_proba(named), atol=1e-9
    )


def test_a_native_deployment_scores_a_classifier_in_one_pass(sqlite_project: fti.Project) -> None:
    """``scorer="native"``: one predict_proba pass per request, the labels its argmax (issue 21)."""
    _, model, X = _register(sqlite_project)
    spec = sqlite_project.serving.deploy("hgb", model="hgb@production", scorer="native").spec
    scorer = load_model(sqlite_project, spec).scorer
    assert isinstance(scorer, NativeScorer) and scorer.fused
    out = scorer.predict(X[:80])
    expected = _native(model, X[:80])
    for name in ("predict", "predict_proba"):
        assert out[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(out[name], expected[name])


def test_a_served_scorer_records_the_timings_it_was_chosen_on(sqlite_project: fti.Project) -> None:
    """The serving winner is timed at request sizes and its timings are kept in the signed
    manifest and the choice record of the model version's cache entry."""
    mv, _, _ = _register(sqlite_project)
    spec = sqlite_project.serving.deploy("hgb", model="hgb@production", scorer="fastest").spec
    assert load_model(sqlite_project, spec).scorer_kind == "onnx"
    entry = ScorerCache.at_home(sqlite_project.settings.home).entry(mv)
    record = entry.choice_record("serving")
    assert record is not None and record["winner"] == WINNER
    timings = record["timings"]
    assert timings["rows"] == [1, 16] and set(timings["seconds"]) == {"native", WINNER}
    recorded = json.loads(entry.path(manifest.SUFFIX).read_text())
    assert recorded["timings"] == timings  # signed with the rest of the manifest
    assert entry.choice("batch") is None


def test_a_converted_deployment_starts_without_importing_sklearn(sqlite_project: fti.Project) -> None:
    """Issue 21: ``scorer="converted"`` records its conversion with a manifest like the measured
    winners, so a server start rebuilds it without scikit-learn (0.64 s against 2.2 s)."""
    mv, model, X = _register(sqlite_project)
    sqlite_project.serving.deploy("hgb", model="hgb@production", scorer="converted")
    entry = ScorerCache.at_home(sqlite_project.settings.home).entry(mv)
    assert entry.choice("converted") == WINNER
    assert entry.choice("serving") is None  # not a measured winner: "fastest" still times
    result = _serve_in_fresh_process(sqlite_project.settings.home, X[100:160])
    assert result["heavy"] == [] and result["kind"] == "onnx"
    _assert_native(result, model, X[100:160])
