"""``fti batch score``: real home, registered model, click's runner; JSON and table output."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import fti
from fti.cli.main import cli
from tests.unit.batch.test_batch_score import N, setup_model


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_batch_score_json_and_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        setup_model(project)
    code, out, err = run(
        home, "batch", "score", "fraud@production", "--start", "2024-01-01T10:00:00+00:00", "--end", "2024-01-05T04:00",
        "--output", "preds", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["rows"] == 180 and data["output"] == "preds" and data["model_version"] == 1
    assert data["commit_versions"] == [0]
    code, out, err = run(home, "batch", "score", "fraud", "-o", "preds_all", "--chunk-rows", "50")
    assert code == 0, err
    assert f"scored {N:,} rows with fraud:1" in out and "preds_all" in out
    with fti.connect(home=home) as project:
        assert len(project.feature_store.get_feature_group("preds_all").read()) == N


def test_batch_score_errors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        setup_model(project)
    code, _, err = run(home, "batch", "score", "nope", "-o", "preds")
    assert code == 2 and "model 'nope' not found" in err
    code, _, err = run(home, "batch", "score", "fraud", "-o", "preds", "--start", "yesterday")
    assert code == 2 and "--start 'yesterday' is not an ISO 8601 time" in err
    code, _, err = run(
        home,
        "--json",
        "batch",
        "score",
        "fraud",
        "-o",
        "preds",
        "--start",
        "2024-02-01",
        "--end",
        "2024-01-01",
    )
    assert code == 2 and json.loads(err)["code"] == "invalid_argument"
    code, _, err = run(home, "batch", "score", "fraud")
    assert code == 2 and "Missing option '--output'" in err


def test_batch_score_factorized(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from tests.unit.batch.test_factorized import ORDERS, register, setup_view

    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        fv = setup_view(project)
        register(project, fv, LogisticRegression(max_iter=500), "label")
        register(project, fv, RandomForestClassifier(5, random_state=0), "label", name="forest")
    code, out, err = run(home, "--json", "batch", "score", "linear", "-o", "preds", "--scorer", "factorized")
    assert code == 0, err
    data = json.loads(out)
    assert data["scorer"] == "factorized" and data["rows"] == ORDERS
    # a forest cannot be scored factorized: exit code 2 and the reason
    code, _, err = run(home, "batch", "score", "forest", "-o", "other", "--scorer", "factorized")
    assert code == 2 and "not a scikit-learn linear model" in err
