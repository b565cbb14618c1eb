"""Both example systems end to end, run exactly as their READMEs say: `fti` commands in
subprocesses, a real `fti serve` on loopback, real HTTP requests.

The fraud system runs on a smaller synthetic data set (300 cards x 30 days, via the pipelines'
``cards`` parameter and the backfill range) through the same code as the 1,000 x 90 default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import fti
from examples.demo import free_port
from examples.fraud import inference as fraud_inference
from examples.fraud.feature_pipeline import TRANSACTIONS
from examples.fraud.generator import DATA_START
from examples.fraud.training_pipeline import AUC_FLOOR
from examples.iris import pipelines as iris

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CARDS, DAYS = 300, 30
END = DATA_START + timedelta(days=DAYS)
SCORE_FROM = END - timedelta(days=7)


@dataclass
class System:
    home: Path
    url: str
    env: dict[str, str]


def fti_cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run ``fti ARGS`` from the repository root like a user would; fail with its output."""
    result = subprocess.run(
        [sys.executable, "-m", "fti.cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"fti {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    home = tmp_path_factory.mktemp("e2e") / "fti-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")}
    env["FTI_HOME"] = str(home)
    # examples/iris/README.md
    fti_cli(env, "pipelines", "deploy", "examples/iris/pipelines.py")
    fti_cli(env, "pipelines", "run", "iris_features")
    fti_cli(env, "pipelines", "run", "train_iris")
    fti_cli(env, "pipelines", "run", "score_iris")
    # examples/fraud/README.md, with the smaller data set
    cards = f"cards={CARDS}"
    fti_cli(env, "pipelines", "deploy", "examples/fraud/pipelines.py")
    fti_cli(env, "pipelines", "run", "card_profiles", "--param", cards)
    fti_cli(env, "pipelines", "backfill", "fraud_features", "--start", f"{DATA_START:%Y-%m-%d}",
            "--end", f"{END:%Y-%m-%d}", "--step", f"{DAYS}d", "--param", cards)  # fmt: skip
    fti_cli(env, "pipelines", "run", "train_fraud")
    fti_cli(env, "pipelines", "backfill", "score_fraud", "--start", f"{SCORE_FROM:%Y-%m-%d}",
            "--end", f"{END:%Y-%m-%d}", "--step", "7d")  # fmt: skip

    port = free_port()
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "fti.cli.main", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, ["iris", "fraud"], server, home / "server.log")
        yield System(home, url, env)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wait_ready(url: str, models: list[str], server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    for model in models:
        while True:
            assert server.poll() is None, f"fti serve exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/v2/models/{model}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{model} not ready:\n{log.read_text()}"
            time.sleep(0.2)


@pytest.fixture
def project(system: System) -> Iterator[fti.Project]:
    proj = fti.connect(home=system.home)
    yield proj
    proj.close()


def infer(url: str, model: str, rows: list[dict[str, Any]], request_id: str) -> dict[str, np.ndarray]:
    from fti.serving.deployments import to_inputs

    response = httpx.post(
        f"{url}/v2/models/{model}/infer", json={"id": request_id, "inputs": to_inputs(rows)}, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == request_id and body["model_name"] == model
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in body["outputs"]}


def test_metrics_clear_the_floors_and_the_aliases_point_at_them(project: fti.Project) -> None:
    mr = project.model_registry
    iris_model = mr.get_model("iris@production")
    fraud_model = mr.get_model("fraud@production")
    assert iris_model.metrics["accuracy"] >= 0.9
    assert fraud_model.metrics["auc"] >= AUC_FLOOR
    assert fraud_model.metrics["test_rows"] > 1000
    assert fraud_model.feature_view_name == "fraud" and fraud_model.training_dataset_version is not None
    assert iris_model.read_artifact("confusion_matrix.png").startswith(b"\x89PNG")
    runs = project.pipelines.runs()
    assert runs and all(r.status == "succeeded" for r in runs)


def test_iris_over_http_equals_in_process(system: System, project: fti.Project) -> None:
    flowers = iris.sample_requests()
    got = infer(system.url, "iris", flowers, "e2e-iris")
    model = project.model_registry.get_model("iris@production")
    expected = model.predict(pd.DataFrame(flowers)[iris.FEATURES])
    assert got["predict"].tolist() == expected["predict"].tolist() == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(got["predict_proba"], expected["predict_proba"], rtol=0, atol=1e-6)


def test_fraud_over_http_equals_in_process_enrichment(system: System, project: fti.Project) -> None:
    live = fraud_inference.sample_transactions(project, n_cards=3)
    requests = [fraud_inference.request_for(t) for t in live]
    got = infer(system.url, "fraud", requests, "e2e-fraud")

    model = project.model_registry.get_model("fraud@production")
    fv = model.feature_view()
    fv.init_serving(training_dataset_version=model.training_dataset_version)
    vectors = fv.get_feature_vectors(
        [{"cc_num": r["cc_num"]} for r in requests],
        passed_features=[{k: v for k, v in r.items() if k != "cc_num"} for r in requests],
        return_type="pandas",
    )
    expected = model.predict(vectors)
    # the server may use a faster scorer (ONNX Runtime, float32 trees) verified against native predict
    np.testing.assert_allclose(got["predict_proba"], expected["predict_proba"], rtol=0, atol=1e-6)
    assert got["predict"].tolist() == expected["predict"].tolist()
    # the far-away purchases look riskier than the ordinary ones next to them
    risk = got["predict_proba"][:, 1]
    assert (risk[1::2] > risk[0::2]).all(), risk


def test_inference_logs_hold_the_requests(system: System, project: fti.Project) -> None:
    tag = uuid.uuid4().hex[:8]
    flowers = iris.sample_requests()
    infer(system.url, "iris", flowers, f"log-{tag}")
    requests = [fraud_inference.request_for(t) for t in fraud_inference.sample_transactions(project, 1)]
    infer(system.url, "fraud", requests, f"log-{tag}")
    fs = project.feature_store
    for deployment, sent in (("iris", len(flowers)), ("fraud", len(requests))):
        deadline = time.monotonic() + 20
        while True:  # the server appends in the background, about once a second
            logged = pd.DataFrame()
            if any(g.name == f"{deployment}_inference_log" for g in fs.list_feature_groups()):
                logged = fs.get_feature_group(f"{deployment}_inference_log").read()
                if "request_id" in logged:  # the group is created just before its first commit
                    logged = logged[logged["request_id"] == f"log-{tag}"]
            if len(logged) == sent or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert len(logged) == sent, f"{deployment}: {len(logged)} logged rows for {sent} sent"
        assert (logged["model_name"] == deployment).all()
    iris_log = fs.get_feature_group("iris_inference_log").read()
    row = iris_log[iris_log["request_id"] == f"log-{tag}"].sort_values("row").iloc[0]
    assert row["sepal_length"] == flowers[0]["sepal_length"]


def test_batch_predictions_cover_every_input_row(project: fti.Project) -> None:
    fs = project.feature_store
    iris_predictions = fs.get_feature_group(iris.PREDICTIONS).read()
    assert len(iris_predictions) == 150
    assert set(iris_predictions["id"]) == set(range(150))

    transactions = fs.get_feature_group(TRANSACTIONS).read(columns=["cc_num", "datetime"])
    window = transactions[
        (transactions["datetime"] >= pd.Timestamp(SCORE_FROM))
        & (transactions["datetime"] < pd.Timestamp(END))
    ]
    predictions = fs.get_feature_group(fraud_inference.PREDICTIONS).read()
    assert len(window) > 500
    assert len(predictions) == len(window)
    keys = ["cc_num", "datetime"]
    merged = window.merge(predictions, on=keys, how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
