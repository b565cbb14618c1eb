"""``fti models`` and ``fti runs`` against a real home directory with click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import fti
from fti.cli.main import cli


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LogisticRegression

    home = tmp_path_factory.mktemp("cli") / "home"
    X = pd.DataFrame({"a": np.arange(12, dtype=float), "b": np.arange(12, dtype=float) % 3})
    y = (X["a"] > 5).astype(int)
    with fti.connect(home=home) as project:
        mr = project.model_registry
        with project.run("fraud-training", params={"C": 1.0}) as run:
            run.log_metric("loss", 0.5)
            run.log_metric("loss", 0.3)
            clf = LogisticRegression().fit(X, y)
            mr.register("fraud", clf, run=run, metrics={"auc": 0.91}, input_example=X.head(3))
        mr.register("fraud", clf, metrics={"auc": 0.95})
        mr.register("fraud", clf, metrics={"auc": 0.80})
    return home


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_models_list_and_show(registry_home: Path) -> None:
    code, out, _ = run(registry_home, "models", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["name"], r["version"], r["metrics"]["auc"]) for r in rows] == [
        ("fraud", 1, 0.91),
        ("fraud", 2, 0.95),
        ("fraud", 3, 0.80),
    ]
    code, out, _ = run(registry_home, "models", "show", "fraud", "--version", "1", "--json")
    data = json.loads(out)
    assert code == 0 and data["flavor"] == "sklearn"
    assert [s["name"] for s in data["signature"]["inputs"]] == ["a", "b"]
    assert data["lineage"]["run"]["params"] == {"C": 1.0}
    code, out, _ = run(registry_home, "models", "show", "fraud", "-v", "1")
    assert code == 0 and "model fraud version 1" in out and "predict_proba" in out
    code, out, _ = run(registry_home, "models", "show", "fraud:2", "--json")
    assert code == 0 and (json.loads(out)["version"], json.loads(out)["metrics"]) == (2, {"auc": 0.95})
    code, out, _ = run(registry_home, "models", "list")
    assert code == 0 and "auc=0.95" in out


def test_alias_promote_and_delete(registry_home: Path) -> None:
    code, out, _ = run(registry_home, "models", "alias", "fraud", "production", "1", "--json")
    assert code == 0 and json.loads(out)["version"] == 1
    code, _, err = run(
        registry_home, "models", "promote", "fraud", "3", "production", "-r", "auc>=0.9", "--json"
    )
    assert code == 2
    body = json.loads(err)
    assert body["code"] == "promotion_rejected"
    assert body["details"]["failed_conditions"] == ["auc >= 0.9: fraud:3 has auc = 0.8, short by 0.1"]
    code, out, _ = run(
        registry_home,
        "models",
        "promote",
        "fraud",
        "2",
        "production",
        "--require",
        "auc >= 0.9",
        "--compare-to",
        "production",
    )
    assert code == 0 and "promoted fraud version 2 to 'production'" in out
    code, out, _ = run(registry_home, "models", "show", "fraud@production", "--json")
    history = json.loads(out)["alias_history"]
    assert [(h["from_version"], h["to_version"]) for h in history] == [(None, 1), (1, 2)]
    code, _, err = run(registry_home, "models", "delete", "fraud", "2")
    assert code == 2 and "force=True" in err
    code, out, _ = run(registry_home, "models", "delete", "fraud", "2", "--force")
    assert code == 0 and "deleted fraud version 2" in out
    code, _, err = run(registry_home, "models", "show", "fraud@production")
    assert code == 2 and "no alias 'production'" in err
    code, out, _ = run(registry_home, "models", "alias", "fraud", "staging", "1")
    assert code == 0 and "fraud@staging -> version 1" in out
    code, out, _ = run(registry_home, "models", "alias", "fraud", "staging", "--delete")
    assert code == 0 and "removed fraud@staging" in out


def test_alias_with_reason_and_rollback(registry_home: Path) -> None:
    code, _, _ = run(registry_home, "models", "alias", "fraud", "canary", "1", "--reason", "first cut")
    assert code == 0
    code, _, _ = run(registry_home, "models", "alias", "fraud", "canary", "3", "--reason", "retrained")
    assert code == 0
    code, out, _ = run(
        registry_home, "models", "rollback", "fraud", "--alias", "canary", "--reason", "p99 doubled"
    )
    assert code == 0 and "fraud@canary: version 3 -> 1 (p99 doubled)" in out
    code, out, _ = run(registry_home, "models", "show", "fraud@canary", "--json")
    shown = json.loads(out)
    assert shown["version"] == 1
    assert [
        (h["from_version"], h["to_version"], h["reason"])
        for h in shown["alias_history"]
        if h["alias"] == "canary"
    ] == [
        (None, 1, "first cut"),
        (1, 3, "retrained"),
        (3, 1, "p99 doubled"),
    ]
    # nothing before version 1: a typed error, and the alias stays where it is
    code, _, err = run(
        registry_home, "models", "rollback", "fraud", "--alias", "canary", "--reason", "again", "--json"
    )
    assert code == 2 and json.loads(err)["code"] == "conflict" and "no earlier version" in err
    code, out, _ = run(registry_home, "models", "show", "fraud@canary", "--json")
    assert json.loads(out)["version"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "rollback", "fraud", "--alias", "canary"), "Missing option '--reason'"),
        (("models", "rollback", "fraud", "--alias", "nope", "--reason", "x"), "no alias 'nope' to roll back"),
        (("models", "rollback", "fraud", "--alias", "canary", "--reason", " "), "needs a reason"),
        (("models", "show", "nope"), "model 'nope' not found"),
        (("models", "show", "fraud", "-v", "99"), "has no version 99"),
        (("models", "show", "fraud:x"), "must be an integer"),
        (("models", "show", "fraud:1", "-v", "2"), "not both"),
        (("models", "alias", "fraud", "Prod!", "1"), "invalid alias"),
        (("models", "alias", "fraud", "prod"), "missing VERSION"),
        (("models", "promote", "fraud", "1", "prod", "-r", "auc"), "invalid --require"),
        (("runs", "show", "999"), "run 999 does not exist"),
    ],
)
def test_bad_input_gives_a_clean_error(registry_home: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = run(registry_home, *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_runs_list_and_show(registry_home: Path) -> None:
    code, out, _ = run(registry_home, "runs", "list", "--json")
    runs = json.loads(out)
    assert code == 0 and [r["name"] for r in runs] == ["fraud-training"]
    assert runs[0]["status"] == "finished" and runs[0]["metrics"] == {"loss": 0.3}
    code, out, _ = run(registry_home, "runs", "show", str(runs[0]["id"]), "--json")
    data = json.loads(out)
    assert [p["value"] for p in data["metric_history"]["loss"]] == [0.5, 0.3]
    assert data["models"] == ["fraud:1"] and "scikit-learn" in data["packages"]
    code, out, _ = run(registry_home, "runs", "show", str(runs[0]["id"]))
    assert code == 0 and "fraud-training" in out
    code, out, _ = run(registry_home, "runs", "list")
    assert code == 0 and "finished" in out


def test_runs_compare_puts_params_and_final_metrics_side_by_side(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        with project.run("train", params={"C": 1.0, "penalty": "l2"}) as first:
            first.log_metric("loss", 0.5)
            first.log_metric("loss", 0.3)  # the final value is compared
            first.log_metric("auc", 0.9)
        with project.run("train", params={"C": 0.1, "penalty": "l2", "solver": "saga"}) as second:
            second.log_metric("loss", 0.3)
    code, out, _ = run(home, "runs", "compare", str(first.id), str(second.id), "--json")
    assert code == 0
    data = json.loads(out)
    assert [r["id"] for r in data["runs"]] == [first.id, second.id]
    assert data["params"] == {"C": [1.0, 0.1], "penalty": ["l2", "l2"], "solver": [None, "saga"]}
    assert data["metrics"] == {"auc": [0.9, None], "loss": [0.3, 0.3]}
    assert data["differ"] == ["C", "solver", "auc"]
    code, out, _ = run(home, "runs", "compare", str(first.id), str(second.id))
    assert code == 0 and "param C" in out and "0.1" in out and "metric loss" in out
    assert "* " in out or "*│" in out or "│ *" in out  # differing rows are marked
    code, _, err = run(home, "runs", "compare", str(first.id))
    assert code == 2 and "two or more different run ids" in err
    code, _, err = run(home, "runs", "compare", str(first.id), "99")
    assert code != 0 and "run 99 does not exist" in err
