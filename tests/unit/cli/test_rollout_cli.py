"""``fti rollout`` and ``fti models rollback`` against a real home with click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import fti
from fti.cli.main import cli


@pytest.fixture
def home(tmp_path: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    home = tmp_path / "home"
    X = pd.DataFrame({"a": np.arange(12, dtype=float), "b": np.arange(12, dtype=float) % 3})
    with fti.connect(home=home) as project:
        mr = project.model_registry
        for threshold in (5, 7):
            mr.register(
                "fraud",
                LogisticRegression().fit(X, (X["a"] > threshold).astype(int)),
                input_example=X.head(3),
            )
        mr.set_alias("fraud", 1, "production")
        project.serving.deploy("fraud", model="fraud@production", scorer="native")
    return home


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_start_status_pause_resume_abort(home: Path) -> None:
    code, out, err = run(home, "rollout", "start", "fraud", "--to", "fraud:2", "--steps", "10,100", "--every", "5m",
                         "--gate", "error_rate<0.01", "--gate", "p99_ms<=champion*1.5", "--json")  # fmt: skip
    assert code == 0, err
    started = json.loads(out)
    assert (started["state"], started["percent"], started["candidate"], started["alias"]) == (
        "running",
        10.0,
        "fraud:2",
        "production",
    )
    assert started["gates"] == {"error_rate": "<0.01", "p99_ms": "<=champion*1.5"}
    code, out, _ = run(home, "rollout", "status", "fraud")
    assert code == 0 and "rollout #1 of fraud: fraud:2 -> @production" in out and "running" in out
    for action, state in (("pause", "paused"), ("resume", "running"), ("abort", "aborted")):
        code, out, _ = run(home, "rollout", action, "fraud", "--reason", f"{action} by test", "--json")
        assert code == 0 and json.loads(out)["state"] == state
    events = json.loads(run(home, "rollout", "status", "fraud", "--json")[1])["events"]
    assert [e["action"] for e in events] == ["started", "paused", "resumed", "aborted"]
    assert events[-1]["reason"] == "abort by test"
    with fti.connect(home=home) as project:
        assert project.serving.get("fraud").spec.variants == ()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rollout", "start", "fraud"), "Missing option '--to'"),
        (("rollout", "start", "fraud", "--to", "fraud:2", "--steps", "a,b"), "invalid --steps"),
        (("rollout", "start", "fraud", "--to", "fraud:2", "--gate", "error_rate=0.1"), "invalid --gate"),
        (("rollout", "start", "fraud", "--to", "fraud:2", "--gate", "roc>=0.9"), "unknown gate 'roc'"),
        (("rollout", "start", "nope", "--to", "fraud:2"), "deployment 'nope' not found"),
        (("rollout", "status", "fraud"), "has no rollout"),
        (("rollout", "pause", "fraud"), "has no rollout"),
    ],
)
def test_bad_input_gives_a_clean_error(home: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = run(home, *args)
    assert code == 2 and message in err and "Traceback" not in err
