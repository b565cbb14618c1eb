"""Commits recovered from the Delta log after a writer died between its offline commit and the
catalog record (issue 19, item 3): no permanent hole in ``commits()``, ``statistics(v)`` works,
and the rows count for ``on_new_data`` triggers."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import fti
from fti.features import records
from tests.unit.features._data import frame

# The writer is SIGKILLed for real, at the worst moment: its second insert is committed to the
# Delta table but not yet recorded in the catalog.
CRASHING_WRITER = """
import os, signal, sys
import fti
from fti.features import records
from tests.unit.features._data import frame

project = fti.connect(home=sys.argv[1], catalog_url=sys.argv[2])
fg = project.feature_store.get_or_create_feature_group(
    "crashy", primary_key=["cc_num"], event_time="ts", online_enabled=True
)
fg.insert(frame([1], [0], [1.0]))
records.record_commit = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
fg.insert(frame([2, 3], [1, 2], [2.0, 3.0]))
"""


def crash_a_writer(home: Path, catalog_url: str) -> None:
    root = str(Path(__file__).resolve().parents[3])
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(home), catalog_url], cwd=root, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def test_connect_records_the_commit_a_killed_writer_left_unrecorded(home: Path, catalog_url: str) -> None:
    crash_a_writer(home, catalog_url)
    with fti.connect(home=home, catalog_url=catalog_url) as project:
        fg = project.feature_store.get_feature_group("crashy")
        assert fg.latest_commit_version() == 1
        history = fg.commits()
        assert [(c.version, c.rows_inserted, c.operation) for c in history] == [
            (0, 1, "insert"),
            (1, 2, "insert"),
        ]
        assert history[1].validation_status == "none"  # attached to the Delta commit by the writer
        assert fg.statistics(1)["amount"]["count"] == 3  # computed on demand from version 1
        assert fg.online_lookup([{"cc_num": 3}])[0]["amount"] == 3.0
        with project.backends.catalog.connect() as conn:
            commits = records.commits_after(conn, project.id, "crashy", 0)
        assert sum(c.rows for c in commits) == 3  # what an on_new_data trigger counts


def test_the_next_insert_fills_a_hole_before_its_own_commit(home: Path, catalog_url: str) -> None:
    with fti.connect(home=home, catalog_url=catalog_url) as project:  # connected before the crash
        fg = project.feature_store.get_or_create_feature_group(
            "crashy", primary_key=["cc_num"], event_time="ts", online_enabled=True
        )
        crash_a_writer(home, catalog_url)
        assert fg.insert(frame([4], [3], [4.0])).version == 2
        recorded = records.list_commits(project.backends.catalog, fg.id)  # not through commits()
        assert [c.version for c in recorded] == [0, 1, 2]
        assert [c.rows_inserted for c in fg.commits()] == [1, 2, 1]


def test_reconciling_is_a_no_op_when_nothing_is_missing(project: fti.Project) -> None:
    fg = project.feature_store.get_or_create_feature_group("clean", primary_key=["cc_num"], event_time="ts")
    assert fg.reconcile() == 0  # no table yet
    fg.insert(frame([1], [0], [1.0]))
    fg.insert(frame([2], [0], [2.0]))
    before = fg.commits()
    assert fg.reconcile() == 0
    assert fg.commits() == before
