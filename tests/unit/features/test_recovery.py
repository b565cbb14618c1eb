"""Catching feature groups up on ``fti.connect`` (fti.features.recovery): writers killed for real
at each point of a write, an emptied online store, entries of live and foreign writers, a catalog
upgraded from before writes were entered, and connects that open no offline table of a group the
catalog shows up to date (issue 21: a model server's cold start paid for opening all of them)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import fti
from fti import _process
from fti.features import records, recovery
from tests.unit.features._data import frame

ROOT = str(Path(__file__).resolve().parents[3])

# The writer is SIGKILLed for real at the given point of its second insert (or, at "schema", of
# its first one, whose schema the catalog has not stored yet).
CRASHING_WRITER = """
import os, signal, sys
import fti
from fti.features import records
from tests.unit.features._data import frame

home, catalog_url, point = sys.argv[1:]
project = fti.connect(home=home, catalog_url=catalog_url)
fg = project.feature_store.get_or_create_feature_group(
    "crashy", primary_key=["cc_num"], event_time="ts", online_enabled=True
)
if point != "schema":
    fg.insert(frame([1], [0], [1.0]))

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "commit":  # the write entered, nothing committed offline
    project.backends.offline.write = die
elif point == "record":  # committed offline, not recorded in the catalog
    records.record_commit = die
elif point == "online":  # recorded (the entry ended), the online write not done
    project.backends.online.write = die
elif point == "schema":  # the first commit recorded and online, its schema not stored
    type(fg)._fix_schema = die
fg.insert(frame([2, 3], [1, 2], [2.0, 3.0]))
"""


def crash_a_writer(home: Path, catalog_url: str, point: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(home), catalog_url, point], cwd=ROOT, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


@pytest.mark.parametrize(
    ("point", "versions", "amount"),
    [("commit", [0], None), ("record", [0, 1], 3.0), ("online", [0, 1], 3.0), ("schema", [0], 3.0)],
)
def test_connect_catches_up_a_writer_killed_at_each_point(
    home: Path, catalog_url: str, point: str, versions: list[int], amount: float | None
) -> None:
    crash_a_writer(home, catalog_url, point)
    with fti.connect(home=home, catalog_url=catalog_url) as project:
        fg = project.feature_store.get_feature_group("crashy")
        recorded = records.list_commits(project.backends.catalog, fg.id)  # not commits(): it reconciles
        assert [c.version for c in recorded] == versions
        assert project.backends.online.applied_version(fg.table_name) == versions[-1]
        found = fg.online_lookup([{"cc_num": 3}])[0]
        assert (found and found["amount"]) == amount
        assert fg.features is not None and [f.name for f in fg.features] == [
            "cc_num",
            "ts",
            "amount",
            "category",
        ]
        assert records.list_writes(project.backends.catalog, project.id) == []  # its writer is gone


def test_connect_refills_an_emptied_online_store(home: Path, catalog_url: str) -> None:
    with fti.connect(home=home, catalog_url=catalog_url) as project:
        fg = project.feature_store.get_or_create_feature_group(
            "t", primary_key=["cc_num"], event_time="ts", online_enabled=True
        )
        fg.insert(frame([1, 2], [0, 0], [1.0, 2.0]))
        project.backends.online.delete_table(fg.table_name)  # a Redis restarted without persistence
        assert fg.online_lookup([{"cc_num": 2}]) == [None]
    with fti.connect(home=home, catalog_url=catalog_url) as again:
        fg = again.feature_store.get_feature_group("t")
        assert [r and r["amount"] for r in fg.online_lookup([{"cc_num": 1}, {"cc_num": 2}])] == [1.0, 2.0]


CONNECT = """
import json, sys
import fti
with fti.connect(home=sys.argv[1], catalog_url=sys.argv[2]) as project:
    print(json.dumps(sorted(m for m in ("deltalake", "pyarrow", "pandas") if m in sys.modules)))
"""


def test_a_connect_with_nothing_behind_opens_no_offline_table(home: Path, catalog_url: str) -> None:
    with fti.connect(home=home, catalog_url=catalog_url) as project:
        fs = project.feature_store
        fs.get_or_create_feature_group("online", primary_key=["cc_num"], event_time="ts", online_enabled=True)
        fs.get_or_create_feature_group("offline", primary_key=["cc_num"], event_time="ts")
        fs.get_or_create_feature_group("empty", primary_key=["cc_num"], event_time="ts", online_enabled=True)
        for name in ("online", "offline"):
            for i in range(2):
                fs.get_feature_group(name).insert(frame([i], [i], [float(i)]))
    done = subprocess.run(
        [sys.executable, "-c", CONNECT, str(home), catalog_url], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    # delta-rs (and Arrow) are never imported: no offline table was opened
    assert json.loads(done.stdout) == []


def test_connect_leaves_up_to_date_groups_unopened_and_catches_up_the_one_behind(
    home: Path, catalog_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with fti.connect(home=home, catalog_url=catalog_url) as project:
        healthy = project.feature_store.get_or_create_feature_group(
            "healthy", primary_key=["cc_num"], event_time="ts", online_enabled=True
        )
        healthy.insert(frame([1], [0], [1.0]))
    # the healthy group's table made unreadable: opening it would fail and be logged
    (home / "offline" / healthy.table_name / "_delta_log" / f"{0:020}.json").write_text("garbage")
    crash_a_writer(home, catalog_url, "online")
    with (
        caplog.at_level(logging.WARNING, logger="fti"),
        fti.connect(home=home, catalog_url=catalog_url) as again,
    ):
        crashy = again.feature_store.get_feature_group("crashy")
        assert again.backends.online.applied_version(crashy.table_name) == 1
    assert [r.getMessage() for r in caplog.records if "not caught up" in r.getMessage()] == []
    with (
        caplog.at_level(logging.WARNING, logger="fti"),
        fti.connect(home=home, catalog_url=catalog_url) as again,
    ):
        again.feature_store.materialize_all()  # compares every group with its offline table
    assert any("'healthy' version 1 was not caught up" in r.getMessage() for r in caplog.records)


def test_entries_of_live_writers_stay_and_foreign_ones_expire(
    project: fti.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    fg = project.feature_store.get_or_create_feature_group(
        "t", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    fg.insert(frame([1], [0], [1.0]))
    catalog = project.backends.catalog
    child = subprocess.run(
        [sys.executable, "-c", "from fti import _process; print(_process.identity())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    dead = records.begin_write(catalog, fg.id, child.stdout.strip())  # that process has exited
    mine = records.begin_write(catalog, fg.id, _process.identity())  # this one runs
    foreign = records.begin_write(catalog, fg.id, "elsewhere:4026531836:7:1234")  # cannot be checked
    assert [w.id for w in records.list_writes(catalog, project.id)] == [dead, mine, foreign]
    recovery.catch_up(project)
    assert [w.id for w in records.list_writes(catalog, project.id)] == [mine, foreign]
    monkeypatch.setattr(recovery, "FOREIGN_WRITE_EXPIRY", timedelta(0))
    recovery.catch_up(project)
    assert [w.id for w in records.list_writes(catalog, project.id)] == [mine]


def test_a_failed_write_leaves_no_entry(project: fti.Project) -> None:
    fg = project.feature_store.get_or_create_feature_group("t", primary_key=["cc_num"], event_time="ts")
    fg.insert(frame([1], [0], [1.0]))

    def pieces():
        yield frame([2], [1], [2.0])
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        fg.insert_stream(pieces())
    assert records.list_writes(project.backends.catalog, project.id) == []
    assert [c.version for c in fg.commits()] == [0]


def test_a_catalog_from_before_entered_writes_catches_every_group_up_once(home: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from fti.storage.metadata.sql import _MIGRATIONS

    with fti.connect(home=home) as project:
        fg = project.feature_store.get_or_create_feature_group(
            "t", primary_key=["cc_num"], event_time="ts", online_enabled=True
        )
        fg.insert(frame([1], [0], [1.0]))
        # what a writer of an older fti killed after its offline commit left: no record, no entry
        import pyarrow as pa

        project.backends.offline.write(fg.table_name, pa.Table.from_pandas(frame([2], [0], [2.0])))
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with project.backends.catalog.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0019_statistics_state")
    with fti.connect(home=home) as project:  # migrated to head, then caught up
        fg = project.feature_store.get_feature_group("t")
        assert [c.version for c in records.list_commits(project.backends.catalog, fg.id)] == [0, 1]
        assert fg.online_lookup([{"cc_num": 2}])[0]["amount"] == 2.0  # type: ignore[index]
        assert records.list_writes(project.backends.catalog, project.id) == []
