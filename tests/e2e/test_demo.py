"""`make demo` (``python -m examples.demo``) on a fresh home, with DEMO_EXIT=1 and a small fraud data set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fti

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_runs_both_systems_serves_them_and_exits(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTI_", "DEMO_"))}
    env.update(
        FTI_HOME=str(tmp_path / "home"), DEMO_EXIT="1", DEMO_CARDS="200", DEMO_DAYS="21", COLUMNS="200"
    )
    result = subprocess.run(
        [sys.executable, "-m", "examples.demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert out.count("✓") == 9 + 10  # every step of the plan and of the monitoring loop succeeded
    port = re.search(r"starting fti serve on http://127\.0\.0\.1:(\d+)", out)
    assert port is not None
    assert re.search(r"setosa\s.*\n.*versicolor\s.*\n.*virginica", out)  # the iris answers, in order
    assert f"curl -s http://127.0.0.1:{port.group(1)}/v2/models/fraud/infer" in out
    assert f"web UI: http://127.0.0.1:{port.group(1)}/ui/" in out
    # the closed loop: drift found in the live traffic, drift_detected fired, retraining behind the gate
    assert re.search(r"fraud_live: 500 live rows, \d+% of the features drifted", out)
    assert re.search(r"alert 1 \(delivered\): drift in .*amount", out)
    assert re.search(r"retrain_fraud run \d+ \(event\): fraud version 2 passed the gate", out)
    assert re.search(
        r"2026-01-22 \(drifted\)\s+│\s+\d+\s+│ v1\s+│ [01]\.\d{3}\s+│ [01]\.\d{3}\s+│ [01]\.\d{3}\*?\s", out
    )
    with fti.connect(home=tmp_path / "home") as project:
        production = project.model_registry.get_model("fraud@production")
        assert production.version == 2 and production.metrics["auc"] >= 0.85
        assert {d.name for d in project.serving.list()} == {"iris", "fraud"}
        assert len(project.feature_store.get_feature_group("iris_inference_log").read()) == 3
        live = project.monitoring.get_monitor("fraud_live")
        [run] = live.runs()
        assert run.dataset_drift and run.rows == 500 + 0 and "amount" in run.drifted
        [alert] = live.alerts()
        assert alert.status == "delivered" and alert.event_id is not None
        [retrain] = [r for r in project.pipelines.runs("retrain_fraud") if r.trigger == "event"]
        assert retrain.status == "succeeded" and retrain.event["payload"]["alert_id"] == alert.id  # type: ignore[index]
        weekly = project.monitoring.get_monitor("fraud_batch").results()
        realized = weekly[(weekly.feature == "roc_auc") & (weekly.test == "realized") & (weekly.slice == "")]
        assert set(realized.model_version) == {0, 1, 2}  # all versions, v1, then v2 after re-scoring
        assert (realized.statistic > 0.5).all()
