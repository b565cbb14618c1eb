"""``fti info`` and ``fti fg``: real home directory, click's runner, JSON output checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import fti
from fti.cli.main import cli


@pytest.fixture
def filled_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        fg = project.feature_store.get_or_create_feature_group(
            "transactions", primary_key=["cc_num"], event_time="ts", online_enabled=True
        )
        ts = [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
        fg.insert(pd.DataFrame({"cc_num": [1, 2, 3], "ts": ts, "amount": [1.5, 2.5, 3.5]}))
        fg.insert(pd.DataFrame({"cc_num": [4], "ts": ts[:1], "amount": [9.0]}))
    return home


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_command_groups(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "--help")
    assert code == 0 and "fg" in out and "info" in out


def test_info_json(filled_home: Path) -> None:
    code, out, _ = run(filled_home, "--json", "info")
    data = json.loads(out)
    assert code == 0
    assert data["project"] == "default" and data["feature_groups"] == 1
    assert data["settings"]["catalog_url"] == f"sqlite:///{filled_home}/catalog.db"


def test_fg_list_and_show(filled_home: Path) -> None:
    code, out, _ = run(filled_home, "fg", "list", "--json")
    assert code == 0
    assert json.loads(out) == [
        {
            "name": "transactions",
            "version": 1,
            "primary_key": ["cc_num"],
            "event_time": "ts",
            "online_enabled": True,
            "commits": 2,
            "description": "",
        }
    ]
    code, out, _ = run(filled_home, "fg", "show", "transactions", "--json")
    shown = json.loads(out)
    assert [c["rows_inserted"] for c in shown["commits"]] == [3, 1]
    assert shown["statistics"]["amount"]["max"] == 9.0
    code, out, _ = run(filled_home, "fg", "show", "transactions")
    assert code == 0 and "amount" in out and "float64" in out


def test_fg_read_time_travel_and_formats(filled_home: Path) -> None:
    code, out, _ = run(filled_home, "fg", "read", "transactions", "--as-of", "0", "--json")
    assert code == 0 and sorted(r["cc_num"] for r in json.loads(out)) == [1, 2, 3]
    code, out, _ = run(filled_home, "fg", "read", "transactions", "--format", "csv", "-c", "cc_num,amount")
    assert out.splitlines()[0] == '"cc_num","amount"' and len(out.splitlines()) == 5


def test_errors_are_clean_messages(filled_home: Path) -> None:
    code, _, err = run(filled_home, "fg", "show", "nope")
    assert code == 2 and "feature group 'nope' not found" in err and "Traceback" not in err
    code, _, err = run(filled_home, "--json", "fg", "read", "transactions", "-c", "bogus")
    assert code == 2 and json.loads(err)["code"] == "schema_mismatch"
    code, _, err = run(filled_home, "-p", "ghost", "info")
    assert code == 2 and "project 'ghost' does not exist" in err
    code, _, err = run(filled_home, "-p", "Bad-Name", "info")
    assert code == 2 and "invalid project name" in err


def test_compact_then_vacuum_keeps_the_rows_and_old_versions_until_vacuumed(filled_home: Path) -> None:
    code, out, err = run(filled_home, "fg", "compact", "transactions")
    assert code == 0, err
    assert out.strip() == "compacted transactions v1 as commit 2"
    code, out, _ = run(filled_home, "--json", "fg", "compact", "transactions")
    assert code == 0 and json.loads(out)["commit"] is None  # one file already: nothing to compact
    with fti.connect(home=filled_home) as project:
        fg = project.feature_store.get_feature_group("transactions")
        assert fg.commits()[-1].operation == "compact"
        assert sorted(fg.read()["cc_num"]) == [1, 2, 3, 4]
        assert len(fg.read(as_of=0)) == 3  # the first insert's files are still there
    code, out, err = run(filled_home, "--json", "fg", "vacuum", "transactions", "--retention", "0")
    assert code == 0, err
    assert json.loads(out)["files_deleted"] == 2  # the two inserts' files, replaced by the compaction
    with fti.connect(home=filled_home) as project:
        fg = project.feature_store.get_feature_group("transactions")
        assert sorted(fg.read()["cc_num"]) == [1, 2, 3, 4]
        with pytest.raises(fti.errors.NotFoundError, match="deleted by vacuum"):
            fg.read(as_of=0)
    code, _, err = run(filled_home, "fg", "vacuum", "transactions", "--retention", "soon")
    assert code == 2 and "--retention" in err
