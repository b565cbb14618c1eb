"""``fti secrets``: values from stdin, --from-env or a hidden prompt; listings never show them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import fti
from fti.cli.main import cli

VALUE = "s3cr3t-Value-9f2"


def run(
    home: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], input=stdin, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_set_list_delete_without_showing_values(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, _ = run(home, "secrets", "set", "analytics-db", stdin=VALUE + "\n")
    assert code == 0 and VALUE not in out
    code, out, err = run(
        home, "secrets", "set", "from-env", "--from-env", "MY_VAR", env={"MY_VAR": VALUE + "x"}
    )
    assert code == 0, err
    code, out, _ = run(home, "--json", "secrets", "list")
    listed = json.loads(out)
    assert [r["name"] for r in listed] == ["analytics-db", "from-env"]
    assert set(listed[0]) == {"name", "created_at", "created_by", "updated_at", "updated_by"}
    code, table, _ = run(home, "secrets", "list")
    code, info, _ = run(home, "--json", "info")
    assert json.loads(info)["secrets"] == 2
    for shown in (out, table, info):
        assert VALUE not in shown
    with fti.connect(home=home) as project:  # the newline echo adds is not part of the value
        assert project.secrets.get("analytics-db") == VALUE
        assert project.secrets.get("from-env") == VALUE + "x"
    code, out, _ = run(home, "--json", "secrets", "delete", "from-env")
    assert code == 0 and json.loads(out) == {"name": "from-env", "deleted": True}


def test_errors_name_the_problem(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, _, err = run(home, "secrets", "delete", "nope")
    assert code == 2 and "secret 'nope' does not exist" in err
    code, _, err = run(home, "secrets", "set", "Bad Name", stdin="x")
    assert code == 2 and "invalid secret name" in err
    code, _, err = run(home, "secrets", "set", "ok", "--from-env", "UNSET_VAR_FTI", env={"UNSET_VAR_FTI": ""})
    assert code == 2 and "UNSET_VAR_FTI" in err
    code, _, err = run(home, "--json", "secrets", "set", "empty", stdin="")
    assert code == 2 and json.loads(err)["code"] == "invalid_argument"


@pytest.mark.slow
def test_hidden_prompt_on_a_terminal(tmp_path: Path) -> None:
    """A real pseudo-terminal: the value is asked twice, never echoed."""
    import os
    import pty
    import select

    home = tmp_path / "home"
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI on the terminal
        os.execv(
            sys.executable,
            [sys.executable, "-m", "fti.cli.main", "--home", str(home), "secrets", "set", "tty"],
        )
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        while marker not in seen:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, seen
            seen += os.read(fd, 1024)

    read_until(b"Value of secret tty")
    os.write(fd, VALUE.encode() + b"\r")
    read_until(b"Repeat for confirmation")
    os.write(fd, VALUE.encode() + b"\r")
    read_until(b"secret tty set")
    os.waitpid(pid, 0)
    os.close(fd)
    assert VALUE.encode() not in seen
    done = subprocess.run(
        [sys.executable, "-c", f"import fti; print(fti.connect(home={str(home)!r}).secrets.get('tty'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == VALUE
