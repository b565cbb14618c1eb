"""Round trip of every flavor: the loaded model predicts exactly what the original did."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import IntegrityError, ValidationError
from fti.registry.flavors.base import FLAVORS, detect_flavor, get_flavor


def _assert_same_predictions(mv, original, X) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    flavor = mv.flavor_impl
    loaded = mv.load()
    before = flavor.predict(original, X)
    after = flavor.predict(loaded, X)
    assert sorted(before) == sorted(after) == sorted(mv.signature.output_names)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    for spec in mv.signature.outputs:
        assert list(after[spec.name].shape[1:]) == spec.shape[1:]
    return after


def test_sklearn_pipeline_and_forest(sqlite_project: fti.Project, xy, classifier) -> None:
    from sklearn.ensemble import RandomForestRegressor

    X, y = xy
    mr = sqlite_project.model_registry
    mv = mr.register("pipe", classifier, input_example=X.head(5))
    assert mv.flavor_options["trusted_types"] == []
    out = _assert_same_predictions(mv, classifier, X)
    np.testing.assert_array_equal(out["predict"], classifier.predict(X))
    forest = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0).fit(X.to_numpy(), y)
    mv = mr.register("forest", forest, input_example=X.to_numpy()[:4])
    assert mv.flavor_options["trusted_types"] == ["sklearn.tree._tree.Tree"]
    assert mv.signature.input_names == ["input_0", "input_1", "input_2"]
    assert [o.name for o in mv.signature.outputs] == ["predict"]
    _assert_same_predictions(mv, forest, X.to_numpy())


class ScaleBy:  # a user-defined type: not trusted unless named at registration
    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def fit(self, X, y=None):  # type: ignore[no-untyped-def]
        return self

    def transform(self, X):  # type: ignore[no-untyped-def]
        return np.asarray(X) * self.factor


def test_sklearn_untrusted_types_need_explicit_trust(sqlite_project: fti.Project, xy) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    X, y = xy
    model = make_pipeline(ScaleBy(), LinearRegression()).fit(X.to_numpy(), y)
    mr = sqlite_project.model_registry
    qualified = f"{__name__}.ScaleBy"
    with pytest.raises(ValidationError, match=f"trusted_types=\\['{qualified}'\\]"):
        mr.register("custom", model)
    mv = mr.register("custom", model, trusted_types=[qualified], input_example=X.to_numpy()[:3])
    assert qualified in mv.flavor_options["trusted_types"]
    _assert_same_predictions(mv, model, X.to_numpy())


def test_sklearn_load_refuses_types_not_trusted_at_save(
    sqlite_project: fti.Project, xy, tmp_path: Path
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = xy
    tree = DecisionTreeClassifier(max_depth=2).fit(X, y)
    mv = sqlite_project.model_registry.register("tree", tree)
    directory = mv.download(tmp_path / "files")
    flavor = get_flavor("sklearn")
    with pytest.raises(
        IntegrityError, match=r"not trusted when it was registered: \['sklearn.tree._tree.Tree'\]"
    ):
        flavor.load(directory, {**mv.flavor_options, "trusted_types": []})
    assert type(flavor.load(directory, mv.flavor_options)) is DecisionTreeClassifier


def test_xgboost_wrappers_and_booster(sqlite_project: fti.Project, xy) -> None:
    import xgboost as xgb

    X, y = xy
    mr = sqlite_project.model_registry
    clf = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(X, y)
    mv = mr.register("xgb", clf, input_example=X.head(5))
    assert mv.flavor == "xgboost" and mv.artifacts.keys() == {"model.ubj"}
    _assert_same_predictions(mv, clf, X)
    assert type(mv.load()) is xgb.XGBClassifier
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=y), num_boost_round=3)
    mv = mr.register("xgb_booster", booster, input_example=X.head(5), save_options={"format": "json"})
    assert mv.artifacts.keys() == {"model.json"}
    _assert_same_predictions(mv, booster, X.to_numpy())
    with pytest.raises(ValidationError, match="'ubj' or 'json'"):
        mr.register("xgb_bad", booster, save_options={"format": "pickle"})


def test_lightgbm_wrappers_and_booster(sqlite_project: fti.Project, xy) -> None:
    import lightgbm as lgb

    X, y = xy
    mr = sqlite_project.model_registry
    labels = np.where(y == 1, "fraud", "ok")
    clf = lgb.LGBMClassifier(n_estimators=4, num_leaves=4, min_child_samples=5, verbose=-1).fit(X, labels)
    mv = mr.register("lgb", clf, input_example=X.head(5))
    assert mv.artifacts.keys() == {"model.txt"}
    out = _assert_same_predictions(mv, clf, X)
    assert set(out["predict"]) <= {"fraud", "ok"}
    assert mv.signature.outputs[0].datatype == "BYTES"
    reg = lgb.LGBMRegressor(n_estimators=4, num_leaves=4, min_child_samples=5, verbose=-1).fit(
        X.to_numpy(), y
    )
    _assert_same_predictions(mr.register("lgb_reg", reg, input_example=X.to_numpy()[:5]), reg, X.to_numpy())
    booster = reg.booster_
    _assert_same_predictions(mr.register("lgb_booster", booster, input_example=X.head(5)), booster, X)


def test_onnx(sqlite_project: fti.Project, xy) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = xy
    features = X.to_numpy(dtype=np.float32)
    clf = LogisticRegression().fit(features, y)
    proto = to_onnx(clf, features[:1], options={"zipmap": False}, target_opset=17)
    mv = sqlite_project.model_registry.register("onnx", proto, input_example=features[:5])
    assert mv.flavor == "onnx" and mv.signature.output_names == ["predict", "predict_proba"]
    out = _assert_same_predictions(mv, proto, features)
    np.testing.assert_array_equal(out["predict"], clf.predict(features))
    np.testing.assert_allclose(out["predict_proba"], clf.predict_proba(features), atol=1e-6)


def test_pytorch_torchscript(sqlite_project: fti.Project, xy) -> None:
    import torch

    X, _ = xy
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    mr = sqlite_project.model_registry
    with pytest.raises(ValidationError, match="pass input_example"):
        mr.register("torch_net", net)
    mv = mr.register("torch_net", net, input_example=X.head(5))  # traced to TorchScript
    assert mv.flavor == "pytorch" and mv.signature.outputs[0].datatype == "FP32"
    out = _assert_same_predictions(mv, net, X)
    assert out["predict"].shape == (len(X),)
    assert isinstance(mv.load(), torch.jit.ScriptModule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(net)
    _assert_same_predictions(mr.register("torch_script", scripted, input_example=X.head(2)), scripted, X)


def test_pyfunc_executes_the_referenced_function(sqlite_project: fti.Project, xy, tmp_path: Path) -> None:
    from fti.registry.flavors.pyfunc import PythonModel

    X, _ = xy
    weights = tmp_path / "weights.csv"
    weights.write_text("1.0,0.5,0.0")
    model = PythonModel("tests.unit.registry._pyfunc_model:predict", {"weights": weights})
    mv = sqlite_project.model_registry.register("custom", model, input_example=X.head(4))
    assert mv.artifacts.keys() == {"artifacts/weights"}
    weights.unlink()  # the stored copy is what the loaded model uses
    out = _assert_same_predictions(
        mv, PythonModel(model.function, {"weights": mv.download(tmp_path / "d") / "artifacts/weights"}), X
    )
    np.testing.assert_allclose(out["score"], X.to_numpy() @ np.array([1.0, 0.5, 0.0]))
    with pytest.raises(ValidationError, match=r"'package\.module:function'"):
        PythonModel("not a reference")
    with pytest.raises(ValidationError, match="is not a file"):
        PythonModel("tests.unit.registry._pyfunc_model:predict", {"weights": tmp_path / "missing"})


def test_unknown_objects_list_supported_flavors() -> None:
    with pytest.raises(ValidationError) as info:
        detect_flavor(object())
    for name in FLAVORS:
        assert name in info.value.message
    with pytest.raises(ValidationError, match="unknown model flavor 'pickle'"):
        get_flavor("pickle")


def test_flavor_mismatch_and_unfitted_models(sqlite_project: fti.Project) -> None:
    from sklearn.linear_model import LogisticRegression

    mr = sqlite_project.model_registry
    with pytest.raises(ValidationError, match="not fitted"):
        mr.register("unfitted", LogisticRegression())
    with pytest.raises(ValidationError, match="flavor 'onnx' does not accept"):
        mr.register("m", LogisticRegression(), flavor="onnx")
    assert mr.list_models() == []


def test_input_example_as_frame_or_array_is_aligned(sqlite_project: fti.Project, xy, classifier) -> None:
    X, _ = xy
    mv = sqlite_project.model_registry.register("pipe", classifier, input_example=X.head(3))
    flavor = mv.flavor_impl
    as_frame = flavor.predict(classifier, X)
    as_array = flavor.predict(classifier, X.to_numpy().astype(object))
    np.testing.assert_array_equal(as_frame["predict_proba"], as_array["predict_proba"])
    with pytest.raises(ValidationError, match="expects 3 input columns"):
        flavor.predict(classifier, X.to_numpy()[:, :2])
    assert isinstance(mv.input_example(), pd.DataFrame)


def test_detecting_a_flavor_imports_no_other_ml_library(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from sklearn.linear_model import LinearRegression\n"
        "from fti.registry.flavors.base import detect_flavor\n"
        "assert detect_flavor(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])).name == 'sklearn'\n"
        "print(sorted(m for m in ('torch', 'xgboost', 'lightgbm', 'onnx', 'onnxruntime') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.strip() == "[]"


def test_loading_a_sklearn_model_imports_no_pytorch(sqlite_project: fti.Project, xy) -> None:
    """skops' import walks scikit-learn's packages, which would import PyTorch (~250 MB)."""
    import subprocess
    import sys

    from sklearn.tree import DecisionTreeClassifier

    X = np.asarray(xy[0], dtype=float)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, xy[1])
    sqlite_project.model_registry.register("tree", model, input_example=X[:5])
    code = (
        "import sys, json, numpy as np\n"
        "import fti\n"
        "with fti.connect(home=sys.argv[1]) as p:\n"
        "    model = p.model_registry.get_model('tree').load()\n"
        "    X = np.array(json.loads(sys.argv[2]))\n"
        "    finders = [type(f).__name__ for f in sys.meta_path]\n"
        "    print(json.dumps({'torch': 'torch' in sys.modules, 'pred': model.predict(X).tolist(),\n"
        "                      'finders': finders}))\n"
    )
    X_sample = X[:20]
    result = subprocess.run(
        [sys.executable, "-c", code, str(sqlite_project.settings.home), json.dumps(X_sample.tolist())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["torch"] is False
    assert out["pred"] == model.predict(X_sample).tolist()
    assert "_RefuseImport" not in out["finders"]  # the import guard is gone once skops is in


LEAN_LOADER = """
import json, sys
import numpy as np
import fti
from fti.errors import IntegrityError
from fti.registry.flavors import sklearn
from fti.registry.flavors.base import get_flavor

sklearn.skip_estimator_walk()  # as a model server does
home, files, X = sys.argv[1], sys.argv[2], np.array(json.loads(sys.argv[3]))
with fti.connect(home=home) as project:
    out = {}
    for name in ("pipeline", "tree"):
        mv = project.model_registry.get_model(name, version=1)
        out[name] = mv.load().predict_proba(X).tolist()
    mv = project.model_registry.get_model("tree", version=1)
    try:  # the stored list without the tree's own (non-estimator) type: still refused
        get_flavor("sklearn").load(mv.download(files), {**mv.flavor_options, "trusted_types": []})
        out["refused"] = None
    except IntegrityError as exc:
        out["refused"] = exc.details["untrusted_types"]
out["walked"] = sorted(m for m in ("sklearn.gaussian_process", "sklearn.neural_network") if m in sys.modules)
print(json.dumps(out))
"""


def test_a_model_server_loads_sklearn_models_without_the_estimator_walk(
    sqlite_project: fti.Project, xy, classifier, tmp_path: Path
) -> None:
    """skops trusts scikit-learn's estimators by listing them at import, importing every public
    module (most of a native cold start); a server skips that and trusts the file's estimators
    one by one, refusing anything else exactly as before."""
    import subprocess
    import sys

    from sklearn.tree import DecisionTreeClassifier

    X = np.asarray(xy[0], dtype=float)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, xy[1])
    mr = sqlite_project.model_registry
    mr.register("pipeline", classifier, input_example=xy[0].head(3))
    mr.register("tree", tree, input_example=X[:3])
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LEAN_LOADER,
            str(sqlite_project.settings.home),
            str(tmp_path / "files"),
            json.dumps(X[:20].tolist()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["pipeline"] == classifier.predict_proba(xy[0].head(20)).tolist()
    assert out["tree"] == tree.predict_proba(X[:20]).tolist()
    assert out["refused"] == ["sklearn.tree._tree.Tree"]
    assert out["walked"] == []  # modules only the walk imports (these models need neither)


@pytest.mark.parametrize(
    ("type_name", "estimator"),
    [
        ("sklearn.linear_model._logistic.LogisticRegression", True),
        ("sklearn.pipeline.Pipeline", True),
        ("sklearn.base.BaseEstimator", False),  # all_estimators leaves it out
        ("sklearn.ensemble._base.BaseEnsemble", False),  # abstract
        ("sklearn.tree._tree.Tree", False),  # not an estimator
        ("sklearn.utils._bunch.Bunch", False),
        ("sklearn.linear_model.LogisticRegression", False),  # re-exported: not where it is defined
        ("sklearn.linear_model._logistic.NoSuchModel", False),
        ("sklearn.no_such_module.Model", False),
        ("builtins.eval", False),
        ("os.system", False),
    ],
)
def test_what_the_lean_loader_trusts_as_an_estimator(type_name: str, estimator: bool) -> None:
    from fti.registry.flavors.sklearn import _is_estimator

    assert _is_estimator(type_name) is estimator


def test_the_estimators_a_lean_load_trusts_are_those_skops_walk_lists() -> None:
    """A model server skips skops' walk of scikit-learn and trusts a type only when the walk would
    have listed it: every estimator of ``all_estimators()``, and not a test helper a private
    module defines but no public module exports, nor anything outside scikit-learn."""
    from sklearn.utils import all_estimators

    from fti.registry.flavors.sklearn import _is_estimator

    listed = {f"{c.__module__}.{c.__qualname__}" for _, c in all_estimators()}
    assert listed and all(_is_estimator(name) for name in listed)
    for name in (
        "sklearn.utils._mocking.CheckingClassifier",  # public name, private module, not exported
        "sklearn.base.BaseEstimator",
        "sklearn.tree._classes.BaseDecisionTree",  # abstract
        "sklearn.utils.Bunch",  # not an estimator
        "builtins.eval",
        "numpy.ndarray",
    ):
        assert not _is_estimator(name), name
