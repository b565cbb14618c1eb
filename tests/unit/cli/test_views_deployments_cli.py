"""``fti fv``, ``fti deployments``, ``fti fg commits|stats``, tables that fit 80 columns, and the
home the CLI uses: read-only commands never create one."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

import fti
from fti.cli.main import cli


def run(home: Path | None, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    options = [] if home is None else ["--home", str(home)]
    if cwd is None:
        result = CliRunner().invoke(cli, [*options, *args])
    else:
        previous = Path.cwd()
        os.chdir(cwd)
        try:
            result = CliRunner(env={"FTI_HOME": None}).invoke(cli, [*options, *args])
        finally:
            os.chdir(previous)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def demo(demo_home: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    return home


def _fits(out: str) -> None:
    assert max(len(line) for line in out.splitlines()) <= 80, out


def test_fv_list_show_training_datasets_and_delete(demo: Path) -> None:
    code, out, err = run(demo, "fv", "list")
    assert code == 0, err
    _fits(out)
    assert "iris" in out and "fraud" in out
    code, out, _ = run(demo, "fv", "list", "--format", "json")
    views = {v["name"]: v for v in json.loads(out)}
    assert views["iris"]["spine"] == "iris:1" and views["iris"]["labels"] == ["variety"]
    code, out, _ = run(demo, "fv", "show", "iris")
    assert code == 0 and "sepal_length" in out and "training datasets" in out
    _fits(out)
    shown = json.loads(run(demo, "fv", "show", "iris", "--json")[1])
    assert [f["name"] for f in shown["features"]][:2] == ["sepal_length", "sepal_width"]
    assert shown["models"] == ["iris:1"]
    code, out, _ = run(demo, "fv", "training-datasets", "iris", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["version"] for r in rows] == ["1"] and json.loads(rows[0]["rows"])["train"] > 0
    # a training dataset a model was trained on needs --force; then the view itself
    code, _, err = run(demo, "fv", "delete", "iris", "1", "--training-dataset", "1")
    assert code == 2 and "used to train model version(s) iris:1" in err
    assert run(demo, "fv", "delete", "iris", "1", "-t", "1", "--force")[0] == 0
    assert json.loads(run(demo, "fv", "training-datasets", "iris", "--json")[1]) == []
    code, out, _ = run(demo, "fv", "delete", "iris", "1")
    assert code == 0 and "deleted feature view iris version 1" in out
    code, _, err = run(demo, "fv", "show", "iris")
    assert code == 2 and "feature view 'iris' not found" in err


def test_deployments_list_deploy_stop_start_delete_and_logs(demo: Path) -> None:
    code, out, err = run(demo, "deployments", "list")
    assert code == 0, err
    _fits(out)
    listed = json.loads(run(demo, "deployments", "list", "--json")[1])
    assert {d["name"]: d["serves"] for d in listed}["iris"] == "iris:1"
    code, out, err = run(
        demo, "deployments", "deploy", "iris_pinned", "--model", "iris:1", "--scorer", "native"
    )
    assert code == 0 and "deployed iris_pinned: iris (serves iris:1)" in out, err
    assert run(demo, "deployments", "stop", "iris_pinned")[0] == 0
    statuses = {d["name"]: d["status"] for d in json.loads(run(demo, "deployments", "list", "--json")[1])}
    assert statuses["iris_pinned"] == "stopped"
    assert run(demo, "deployments", "start", "iris_pinned")[0] == 0
    code, _, err = run(demo, "deployments", "logs", "iris_pinned")
    assert code == 2 and "has logged no request yet" in err
    with fti.connect(home=demo) as project:  # what the model server writes, three requests
        group = project.feature_store.get_or_create_feature_group(
            "iris_pinned_inference_log", primary_key=["request_id", "row"], event_time="timestamp"
        )
        group.insert(
            pa.table(
                {
                    "request_id": ["a", "b", "c"],
                    "row": [0, 0, 0],
                    "timestamp": [datetime(2026, 1, 1, h, tzinfo=UTC) for h in (1, 2, 3)],
                    "model_name": ["iris"] * 3,
                    "model_version": [1, 1, 1],
                    "sepal_length": [5.1, 6.2, 7.3],
                    "predict": ["setosa", "versicolor", "virginica"],
                }
            )
        )
    code, out, _ = run(demo, "deployments", "logs", "iris_pinned", "-n", "2")
    assert code == 0 and "versicolor" in out and "virginica" in out and "setosa" not in out
    _fits(out)
    logged = json.loads(run(demo, "deployments", "logs", "iris_pinned", "--json")[1])
    assert [r["request_id"] for r in logged] == ["a", "b", "c"]
    assert json.loads(run(demo, "deployments", "logs", "iris_pinned", "--since", "1h", "--json")[1]) == []
    assert run(demo, "deployments", "delete", "iris_pinned")[0] == 0
    code, _, err = run(demo, "deployments", "stop", "iris_pinned")
    assert code == 2 and "iris_pinned" in err


def test_fg_commits_and_stats(demo: Path) -> None:
    code, out, _ = run(demo, "fg", "commits", "iris")
    assert code == 0 and "insert" in out
    _fits(out)
    commits = json.loads(run(demo, "fg", "commits", "iris", "--json")[1])
    assert commits[0]["version"] == 0 and commits[0]["rows"] == 150
    code, out, _ = run(demo, "fg", "stats", "iris")
    assert code == 0 and "sepal_length" in out
    _fits(out)
    stats = json.loads(run(demo, "fg", "stats", "iris", "--format", "json")[1])
    assert stats["sepal_length"]["count"] == 150 and "histogram" in stats["sepal_length"]


def test_wide_tables_fit_80_columns_and_say_how_to_see_everything(demo: Path) -> None:
    with fti.connect(home=demo) as project:
        fg = project.feature_store.get_or_create_feature_group(
            "a_group_with_a_rather_long_name_for_a_narrow_terminal",
            primary_key=["first_key_column", "second_key_column"],
            event_time="the_event_time_column",
        )
        fg.insert(
            pa.table(
                {
                    "first_key_column": [1],
                    "second_key_column": [2],
                    "the_event_time_column": [datetime(2026, 1, 1, tzinfo=UTC)],
                }
            )
        )
    listings = [("fg", "list"), ("models", "list"), ("runs", "list"), ("fv", "list"), ("keys", "list")]
    for args in (*listings, ("pipelines", "list"), ("pipelines", "runs"), ("secrets", "list")):
        code, out, err = run(demo, *args)
        assert code == 0, err
        _fits(out)
    code, out, _ = run(demo, "fg", "list")
    assert "--format csv or --format json" in out and "a_group_with_a_rather" in out
    rows = list(csv.DictReader(io.StringIO(run(demo, "fg", "list", "--format", "csv")[1])))
    assert "a_group_with_a_rather_long_name_for_a_narrow_terminal" in [r["name"] for r in rows]


def test_read_only_commands_never_create_a_home(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (("fg", "list"), ("fv", "list"), ("models", "list"), ("deployments", "list"), ("info",)):
        code, _, err = run(None, *args, cwd=empty)
        assert code == 2, err
        assert "no fti project here" in err and str(empty / ".fti") in err
        assert "the default ./.fti in the current directory; FTI_HOME is not set" in err
        assert not (empty / ".fti").exists()
    code, _, err = run(None, "info", "--create", cwd=empty)
    assert code == 0 and (empty / ".fti" / "catalog.db").exists()
    assert f"created the fti home {str(empty / '.fti')!r}" in err
    code, _, err = run(None, "fg", "list", cwd=empty)
    assert code == 0 and "created" not in err
