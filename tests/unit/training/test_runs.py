"""Training runs on a real catalog (SQLite and PostgreSQL): params, metric series, status, capture."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

import fti
from fti.errors import ConflictError, NotFoundError, ValidationError
from fti.training.runs import get_run, git_state, list_runs


def test_run_records_params_metrics_status_and_environment(project: fti.Project) -> None:
    with project.run(
        "fraud-training", params={"max_depth": 6, "lr": 0.1, "alpha": 1.0, "cols": ["a", "b"]}
    ) as run:
        assert run.status == "running"
        assert run.log_metric("loss", 0.5) == 0
        assert run.log_metric("loss", 0.25) == 1
        run.log_metric("loss", 0.2, step=5)
        run.log_metrics({"auc": 0.93, "f1": 0.8})
    assert run.status == "finished"
    assert run.end_time is not None and run.end_time >= run.start_time
    assert run.params == {"alpha": 1.0, "cols": ["a", "b"], "lr": 0.1, "max_depth": 6}
    assert type(run.params["alpha"]) is float and type(run.params["max_depth"]) is int
    assert run.metrics == {"auc": 0.93, "f1": 0.8, "loss": 0.2}
    history = run.metric_history()["loss"]
    assert [(p.step, p.value) for p in history] == [(0, 0.5), (1, 0.25), (5, 0.2)]
    assert run.python_version == sys.version.split()[0]
    assert run.packages["scikit-learn"]
    record = run.record()
    assert record.status == "finished" and record.params["max_depth"] == 6
    again = get_run(project, run.id)
    assert again.metrics == run.metrics and again.name == "fraud-training"
    assert [r.id for r in list_runs(project, "fraud-training")] == [run.id]


def test_params_are_immutable_once_set(project: fti.Project) -> None:
    with project.run("r", params={"max_depth": 6}) as run:
        run.log_param("max_depth", 6)  # same value: a no-op
        run.log_param("seed", 1)
        with pytest.raises(ConflictError, match=r"immutable.*max_depth: set to 6, given 7"):
            run.log_params({"max_depth": 7, "other": 1})
        assert run.params == {"max_depth": 6, "seed": 1}  # nothing of the rejected call was written
        with pytest.raises(ValidationError, match="params must be JSON values"):
            run.log_param("obj", object())


def test_metric_series_are_append_only(project: fti.Project) -> None:
    with project.run("r") as run:
        run.log_metric("loss", 1.0, step=3)
        with pytest.raises(ConflictError, match="append-only, log step 4 or later"):
            run.log_metric("loss", 0.9, step=3)
        with pytest.raises(ConflictError, match="append-only"):
            run.log_metric("loss", 0.9, step=1)
        assert run.log_metric("loss", 0.8) == 4
    assert [p.step for p in run.metric_history()["loss"]] == [3, 4]
    with pytest.raises(ConflictError, match="has ended"):
        run.log_metric("loss", 0.1)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.9", None, True])
def test_non_finite_or_non_numeric_metrics_are_rejected(sqlite_project: fti.Project, value: object) -> None:
    with sqlite_project.run("r") as run:
        run.log_metric("ok", 1.0)
        with pytest.raises(ValidationError, match="must be a finite number"):
            run.log_metrics({"auc": 0.9, "bad": value})  # type: ignore[dict-item]
        assert run.metrics == {"ok": 1.0}  # all or nothing


def test_failed_block_marks_the_run_failed(sqlite_project: fti.Project) -> None:
    with pytest.raises(RuntimeError), sqlite_project.run("r") as run:
        raise RuntimeError("diverged")
    assert run.status == "failed"
    assert "diverged" in (run.record().error or "")
    with pytest.raises(ConflictError, match="already ended"):
        run.end()


def test_bad_run_inputs(sqlite_project: fti.Project) -> None:
    with pytest.raises(ValidationError, match="run name"):
        sqlite_project.run("")
    with pytest.raises(ValidationError, match="params must be a dict"):
        sqlite_project.run("r", params=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="step must be an integer"):
        sqlite_project.run("r").log_metric("x", 1.0, step=-1)
    with pytest.raises(NotFoundError, match="run 999 does not exist"):
        get_run(sqlite_project, 999)


def test_git_state_inside_and_outside_a_repository(tmp_path: Path) -> None:
    assert git_state(tmp_path) == (None, None)
    repo = tmp_path / "repo"
    repo.mkdir()
    env = ["-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run(["git", "add", "train.py"], cwd=repo, check=True)
    subprocess.run(["git", *env, "commit", "-q", "-m", "init"], cwd=repo, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert git_state(repo) == (head, False)
    (repo / "train.py").write_text("print(2)\n")
    assert git_state(repo) == (head, True)


def test_run_captures_git_of_working_directory(
    sqlite_project: fti.Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with sqlite_project.run("outside-git") as run:
        pass
    assert (run.git_commit, run.git_dirty) == (None, None)


def test_recorded_packages_are_the_versions_that_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pipeline's isolated environment puts its own pins before the scheduler's packages: the
    # run must record the pinned version (the one imported), not the shadowed one after it
    from importlib.metadata import version

    from fti.training.runs import installed_packages

    for pin, where in (("2.0", "host"), ("1.0", "env")):
        (tmp_path / where / "ftishadow").mkdir(parents=True)
        (tmp_path / where / "ftishadow" / "__init__.py").write_text(f"VERSION = {pin!r}\n")
        info = tmp_path / where / f"ftishadow-{pin}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ftishadow\nVersion: {pin}\n")
        monkeypatch.syspath_prepend(str(tmp_path / where))  # env ends up first
    try:
        import ftishadow  # type: ignore[import-not-found]

        assert ftishadow.VERSION == version("ftishadow") == "1.0"
        assert installed_packages()["ftishadow"] == "1.0"
    finally:
        sys.modules.pop("ftishadow", None)


def test_runs_log_files_and_figures_digest_checked(project: fti.Project, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fti.errors import IntegrityError

    report = tmp_path / "report.txt"
    report.write_text("precision 0.9")
    plots = tmp_path / "plots"
    (plots / "sub").mkdir(parents=True)
    (plots / "a.csv").write_text("x\n1\n")
    (plots / "sub" / "b.csv").write_text("y\n2\n")
    with project.run("train") as run:
        assert run.log_artifact(report) == ["report.txt"]
        assert run.log_artifact(plots) == ["plots/a.csv", "plots/sub/b.csv"]
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        assert run.log_figure(fig, "roc.png") == "roc.png"
        run.log_figure(fig, "curves/roc.svg")
        plt.close(fig)
    again = get_run(project, run.id)  # read back from the catalog
    assert set(again.artifacts) == {
        "report.txt",
        "plots/a.csv",
        "plots/sub/b.csv",
        "roc.png",
        "curves/roc.svg",
    }
    assert again.read_artifact("report.txt") == b"precision 0.9"
    assert again.read_artifact("roc.png").startswith(b"\x89PNG")
    assert b"<svg" in again.read_artifact("curves/roc.svg")
    folder = again.download_artifacts(tmp_path / "out")
    assert (folder / "plots" / "sub" / "b.csv").read_text() == "y\n2\n"
    report.write_text("precision 0.95")
    run.log_artifact(report, name="report.txt")  # logging a name again replaces the file
    assert get_run(project, run.id).read_artifact("report.txt") == b"precision 0.95"

    stored = Path(project.settings.resolved_artifacts_url) / "runs" / project.name / str(run.id) / "roc.png"
    stored.write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="does not match its recorded digest"):
        run.read_artifact("roc.png")
    for call, message in [
        (lambda: run.log_artifact(tmp_path / "missing.txt"), "path of a file or directory"),
        (lambda: run.log_artifact(report, name="../escape.txt"), "invalid artifact name"),
        (lambda: run.log_figure(object(), "x.png"), "matplotlib Figure"),
        (lambda: run.log_figure(fig, "x.gif"), "needs an extension among png"),
    ]:
        with pytest.raises(ValidationError, match=message):
            call()
    with pytest.raises(NotFoundError, match=f"no artifact 'nope.txt' in run {run.id}"):
        run.read_artifact("nope.txt")
