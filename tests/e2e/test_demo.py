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
    assert out.count("✓") == 9  # every step of the plan succeeded
    port = re.search(r"starting fti serve on http://127\.0\.0\.1:(\d+)", out)
    assert port is not None
    assert re.search(r"setosa\s.*\n.*versicolor\s.*\n.*virginica", out)  # the iris answers, in order
    assert f"curl -s http://127.0.0.1:{port.group(1)}/v2/models/fraud/infer" in out
    assert f"web UI: http://127.0.0.1:{port.group(1)}/ui/" in out
    with fti.connect(home=tmp_path / "home") as project:
        assert project.model_registry.get_model("fraud@production").metrics["auc"] >= 0.85
        assert {d.name for d in project.serving.list()} == {"iris", "fraud"}
        assert len(project.feature_store.get_feature_group("iris_inference_log").read()) == 3
