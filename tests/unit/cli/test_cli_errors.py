"""Mistakes a new user makes on the command line: each is one line naming the problem and the
fix, with exit status 2, never a traceback (issue 19, item 31)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fti.cli.main import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line_error(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def test_a_home_that_is_a_file(tmp_path: Path) -> None:
    home = tmp_path / "not-a-dir"
    home.write_text("x")
    code, _, err = run("--home", str(home), "info")
    assert code == 2
    assert one_line_error(err) == (
        f"Error: the fti home {str(home)!r} is a file, not a directory: pass --home (or set "
        "FTI_HOME) to a directory"
    )
    code, _, err = run("--home", str(home / "below"), "info", "--create")
    assert code == 2 and f"cannot create the fti home {str(home / 'below')!r}" in one_line_error(err)


def test_a_home_that_cannot_be_created() -> None:
    code, _, err = run("--home", "/proc/fti-home", "info", "--create")
    assert code == 2
    line = one_line_error(err)
    assert "cannot create the fti home '/proc/fti-home'" in line and "--home" in line


def test_an_unknown_decorator_option(tmp_path: Path) -> None:
    module = tmp_path / "pipes.py"
    module.write_text(
        "import fti\n\n\n@fti.feature_pipeline(schedul='0 * * * *')\ndef f(project):\n    pass\n"
    )
    code, _, err = run("--home", str(tmp_path / "home"), "pipelines", "deploy", str(module))
    assert code == 2
    assert one_line_error(err) == (
        f"Error: {module.resolve()}, line 4: @fti.feature_pipeline has no option 'schedul' (did "
        "you mean 'schedule'?); its options are name, schedule, timezone, trigger, retries, "
        "retry_backoff, timeout, concurrency, missed, secrets, requirements, python, requirements_file. "
        "Nothing was registered."
    )


@pytest.mark.parametrize(
    "cron, problem",
    [
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
        ("0 0 1 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
        ("*/0 * * * *", "minute step 0 must be at least 1"),
        ("5-1 * * * *", "minute range 5-1 is backwards"),
        ("0 0 * * * *", "use 5 fields 'minute hour day-of-month month day-of-week', got 6"),
        ("x * * * *", "minute 'x' is not a number, range, list or step"),
    ],
)
def test_a_bad_cron_names_the_field_and_its_range(tmp_path: Path, cron: str, problem: str) -> None:
    module = tmp_path / "pipes.py"
    module.write_text(
        f"import fti\n\n@fti.feature_pipeline(schedule={cron!r})\ndef f(project, start, end):\n    pass\n"
    )
    code, _, err = run("--home", str(tmp_path / "home"), "pipelines", "deploy", str(module))
    assert code == 2
    line = one_line_error(err)
    assert f"line 3: invalid cron expression {cron!r}: {problem}" in line, line


def test_valid_crons_still_pass() -> None:
    from fti.pipelines.schedules import check_cron

    for cron in (
        "0 * * * *",
        "*/15 9-17 * * mon-fri",
        "0 0 1,15 jan,jul *",
        "30 2 * * 7",
        "@hourly",
        "0 0 L * *",
    ):
        assert check_cron(cron) == cron


def test_reading_a_version_that_does_not_exist(tmp_path: Path) -> None:
    import pandas as pd

    import fti

    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        fg = project.feature_store.get_or_create_feature_group("tx", primary_key=["id"])
        fg.insert(pd.DataFrame({"id": [1], "x": [1.0]}))
    code, _, err = run("--home", str(home), "fg", "read", "tx", "--as-of", "99")
    assert code == 1 or code == 2
    assert one_line_error(err) == (
        "Error: feature group 'tx' version 1 has no commit 99: its commits are 0 to 0 (see "
        "fg.commits() or `fti fg show tx`)"
    )
