"""Feature-group statistics computed incrementally (issue 20): a commit that only adds rows merges
its rows into the stored state of the previous version; a commit that replaced or deleted rows, a
missing state (a writer killed before storing it) or a concurrent writer's commit in between make
the statistics recomputed over the table, never counted twice."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fti
from fti.features import group_statistics, ingestion, records
from fti.features.statistics import compute_statistics
from fti.features.statistics_state import TableState
from tests.unit.features._data import frame


def group(project: fti.Project, name: str = "tx") -> Any:
    return project.feature_store.get_or_create_feature_group(
        name, primary_key=["cc_num"], event_time="ts", online_enabled=True
    )


def recomputed(fg: Any, version: int) -> dict[str, Any]:
    """The statistics over the whole table at ``version`` (what every commit computed before),
    with the exact distinct counts."""
    dataset = fg.project.backends.offline.dataset(fg.table_name, version=version)
    stats = compute_statistics(dataset)
    table = dataset.to_table()
    for name, entry in stats.items():
        entry["duckdb_distinct"] = entry["approx_distinct"]
        entry["approx_distinct"] = len(set(table.column(name).drop_null().to_pylist()))
    return stats


def state_version(fg: Any) -> int | None:
    stored = records.statistics_state(fg.project.backends.catalog, fg.id)
    return None if stored is None else stored[0]


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Equal figures (the data of these tests is small: the sketches are exact). The distinct
    count of a recomputed version is DuckDB's estimate, which may be off even for ten values."""
    assert list(got) == list(want)
    for name, expected in want.items():
        figures = got[name]
        distinct = figures["approx_distinct"]
        assert distinct in (expected["approx_distinct"], expected["duckdb_distinct"]), name
        for key in ("count", "nulls", "min", "max", "top_values"):
            assert figures.get(key) == expected.get(key), (name, key, figures.get(key), expected.get(key))
        for key in ("mean", "std"):
            if expected[key] is None:
                assert figures[key] is None, (name, key)
            else:
                assert math.isclose(figures[key], expected[key], rel_tol=1e-9), (name, key)
        if "histogram" in expected:
            assert figures["histogram"]["edges"] == expected["histogram"]["edges"]
            assert figures["histogram"]["counts"] == expected["histogram"]["counts"], name


def test_a_large_first_insert_stores_no_state_and_the_first_append_builds_it(
    project: fti.Project, monkeypatch: Any
) -> None:
    monkeypatch.setattr(group_statistics, "FIRST_STATE_MAX_ROWS", 2)  # "large": more than 2 rows
    fg = group(project)
    fg.insert(frame([1, 2, 3], [0, 1, 2], [1.0, 2.0, 4.0]))
    assert state_version(fg) is None  # a group loaded once pays for no state
    fg.insert(frame([4, 5], [3, 4], [8.0, 16.0]), write_mode="append")
    assert state_version(fg) == 1  # built over the table by the first append that could merge
    fg.insert(frame([6], [5], [0.5]), write_mode="append")
    assert state_version(fg) == 2
    for version in range(3):
        assert_same(fg.statistics(version), recomputed(fg, version))


def test_appends_merge_into_the_state_of_the_previous_version(project: fti.Project) -> None:
    fg = group(project)
    fg.insert(frame([1, 2, 3], [0, 1, 2], [1.0, 2.0, 4.0]))
    fg.insert(frame([4, 5], [3, 4], [8.0, 16.0]), write_mode="append")
    fg.insert(frame([6, 7], [5, 6], [32.0, 0.5]))  # an upsert of new keys only adds rows
    fg.insert(frame([8], [7], [3.0]), write_mode="append")
    for version in range(4):
        assert_same(fg.statistics(version), recomputed(fg, version))
    assert state_version(fg) == 3
    stored = records.statistics_state(project.backends.catalog, fg.id)
    assert stored is not None
    state = TableState.from_bytes(stored[1])
    assert state is not None and state.rows == 8
    assert fg.statistics() == state.statistics()  # the figures are the stored state's
    assert fg.statistics()["amount"]["count"] == 8 and fg.statistics()["amount"]["max"] == 32.0
    assert fg.statistics()["amount"]["approx_distinct"] == 8  # the sketch is exact this small


def test_an_upsert_that_replaces_rows_recomputes_without_double_counting(project: fti.Project) -> None:
    fg = group(project)
    fg.insert(frame([1, 2, 3], [0, 1, 2], [1.0, 2.0, 3.0]))
    fg.insert(frame([2], [1], [100.0]))  # replaces the row of key 2
    amount = fg.statistics(1)["amount"]
    assert (amount["count"], amount["max"], amount["mean"]) == (3, 100.0, 104.0 / 3)
    assert_same(fg.statistics(1), recomputed(fg, 1))
    assert state_version(fg) == 0  # no state is built for a commit that replaced rows
    fg.insert(frame([4], [3], [4.0]), write_mode="append")  # no state of version 1: recomputed
    assert state_version(fg) == 2
    fg.insert(frame([5], [4], [5.0]), write_mode="append")  # merged from the fresh state
    assert state_version(fg) == 3
    amount = fg.statistics()["amount"]
    assert (amount["count"], amount["min"], amount["max"]) == (5, 1.0, 100.0)
    assert math.isclose(amount["mean"], (1 + 100 + 3 + 4 + 5) / 5)
    for version in (2, 3):
        assert_same(fg.statistics(version), recomputed(fg, version))


def test_delete_records_makes_the_next_append_recompute(project: fti.Project) -> None:
    fg = group(project)
    fg.insert(frame([1, 2, 3, 4], [0, 1, 2, 3], [1.0, 2.0, 3.0, 40.0]))
    assert fg.delete_records(pd.DataFrame({"cc_num": [4, 2]})) == 2
    assert fg.statistics(1)["amount"]["count"] == 2  # computed on demand, as before
    fg.insert(frame([5], [4], [5.0]), write_mode="append")
    amount = fg.statistics()["amount"]
    assert (amount["count"], amount["max"], amount["mean"]) == (3, 5.0, 3.0)
    assert_same(fg.statistics(2), recomputed(fg, 2))
    assert state_version(fg) == 2


def test_a_schema_change_makes_the_next_append_recompute(project: fti.Project) -> None:
    fg = group(project)
    fg.insert(frame([1, 2], [0, 1], [1.0, 2.0]))
    fg.append_features([fti.Feature("score", "float64")])
    fg.insert(frame([3], [2], [3.0]).assign(score=[0.5]), write_mode="append")
    stats = fg.statistics(2)
    assert (stats["score"]["count"], stats["score"]["nulls"], stats["amount"]["count"]) == (1, 2, 3)
    assert_same(stats, recomputed(fg, 2))
    fg.insert(frame([4], [3], [4.0]).assign(score=[1.5]), write_mode="append")
    assert state_version(fg) == 3
    assert_same(fg.statistics(3), recomputed(fg, 3))


def test_commits_without_statistics_are_caught_up_from_the_rows_they_added(project: fti.Project) -> None:
    fg = group(project)
    fg.insert(frame([1, 2], [0, 1], [1.0, 2.0]))
    fg.insert(frame([3], [2], [3.0]), write_mode="append", statistics=False)
    fg.insert_stream([frame([4], [3], [4.0]), frame([5], [4], [50.0])])
    fg.insert(frame([6], [5], [6.0]))  # an upsert of a new key
    assert state_version(fg) == 3
    amount = fg.statistics(3)["amount"]
    assert (amount["count"], amount["max"], amount["mean"]) == (6, 50.0, 66.0 / 6)
    assert_same(fg.statistics(3), recomputed(fg, 3))
    assert fg.statistics(1)["amount"]["count"] == 3  # not stored: computed on demand, as before


def test_rows_rewritten_between_two_states_make_the_next_append_recompute(project: fti.Project) -> None:
    """A compaction made outside ``fg.compact`` (which carries the state) rewrote the files: the
    rows of its new files are not new rows, so the next append recomputes."""
    fg = group(project)
    fg.insert(frame([1, 2], [0, 1], [1.0, 2.0]))
    fg.insert(frame([3], [2], [3.0]), write_mode="append")
    assert project.backends.offline.compact(fg.table_name) == 2
    fg.insert(frame([4], [3], [4.0]), write_mode="append")
    assert fg.statistics()["amount"]["count"] == 4
    assert_same(fg.statistics(3), recomputed(fg, 3))
    assert state_version(fg) == 3


def test_compaction_carries_the_statistics_and_the_state(project: fti.Project) -> None:
    fg = group(project)
    for i in range(3):
        fg.insert(frame([i, i + 10], [i, i], [float(i), i + 0.5]), write_mode="append")
    version = fg.compact()
    assert version == 3
    assert fg.statistics(3) == fg.statistics(2)  # stored with the compaction: no row changed
    assert records.commit_statistics(project.backends.catalog, fg.id, 3) is not None
    assert state_version(fg) == 3
    fg.insert(frame([20], [9], [9.0]), write_mode="append")
    assert state_version(fg) == 4  # merged: the compaction did not force a full recomputation
    assert_same(fg.statistics(4), recomputed(fg, 4))


def test_a_deleted_group_leaves_no_state_behind(project: fti.Project) -> None:
    fg = group(project)
    fg.insert(frame([1, 2], [0, 1], [1.0, 2.0]))
    fg.insert(frame([3], [2], [3.0]), write_mode="append")
    old = fg.id
    fg.delete()
    assert records.statistics_state(project.backends.catalog, old) is None
    again = group(project)
    again.insert(frame([7], [0], [7.0]))
    assert state_version(again) == 0
    assert again.statistics()["amount"]["count"] == 1


def test_a_writer_whose_state_is_not_stored_yet_is_not_counted_twice(project: fti.Project) -> None:
    """Writer A committed version 1 but has not stored its state; writer B commits version 2:
    B catches the state of version 0 up with the rows of A's files, then merges its own; A's late
    state of version 1 is refused."""
    fg = group(project)
    fg.insert(frame([1, 2], [0, 1], [1.0, 2.0]))
    a_rows, _ = ingestion.prepare(fg, frame([3, 4], [2, 3], [3.0, 4.0]))
    offline = project.backends.offline
    assert offline.write(fg.table_name, a_rows) == 1  # A's commit, nothing recorded yet
    assert fg.insert(frame([5], [4], [5.0]), write_mode="append").version == 2  # B
    assert fg.statistics(2)["amount"]["count"] == 5
    assert_same(fg.statistics(2), recomputed(fg, 2))
    group_statistics.at_commit(fg, a_rows, 1, merged=False)  # A goes on: its state of version 1 is refused
    assert state_version(fg) == 2
    fg.insert(frame([6], [5], [6.0]), write_mode="append")
    assert fg.statistics()["amount"]["count"] == 6
    assert_same(fg.statistics(3), recomputed(fg, 3))


def test_a_first_insert_computes_its_statistics_beside_the_delta_write(
    project: fti.Project, monkeypatch: Any
) -> None:
    """The first commit's statistics depend on its rows alone: they are computed in a thread of
    their own while delta-rs writes, and are those of the table."""
    from fti.features import statistics

    threads: list[str] = []
    compute = statistics.compute_statistics

    def spy(source: Any) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return compute(source)

    monkeypatch.setattr(statistics, "compute_statistics", spy)
    monkeypatch.setattr(group_statistics, "AHEAD_MIN_ROWS", 1)  # small data, as if it were large
    fg = group(project)
    fg.insert(frame([1, 2, 3], [0, 1, 2], [1.0, 2.0, 3.0]))
    assert len(threads) == 1 and threads[0].startswith("fti-statistics")
    assert_same(fg.statistics(0), recomputed(fg, 0))
    assert state_version(fg) == 0
    fg.insert(frame([4], [3], [4.0]), write_mode="append")  # the table exists: nothing ahead
    assert group_statistics.ahead(fg, ingestion.prepare(fg, frame([5], [4], [5.0]))[0]) is None
    assert fg.statistics(1)["amount"]["count"] == 4


def test_statistics_started_ahead_are_dropped_when_another_writer_created_the_table(
    project: fti.Project, monkeypatch: Any
) -> None:
    """Writer A starts the statistics of its rows as those of a new table, but writer B creates
    the table first: A's commit is version 1, whose statistics count B's rows too."""
    fg = group(project)
    a_rows, _ = ingestion.prepare(fg, frame([1, 2], [0, 1], [1.0, 2.0]))
    assert group_statistics.ahead(fg, a_rows) is None  # too small to gain from the overlap
    monkeypatch.setattr(group_statistics, "AHEAD_MIN_ROWS", 1)
    early = group_statistics.ahead(fg, a_rows)
    assert early is not None
    assert fg.insert(frame([3, 4, 5], [2, 3, 4], [3.0, 4.0, 5.0])).version == 0  # B
    assert project.backends.offline.write(fg.table_name, a_rows) == 1  # A's commit
    stats = group_statistics.at_commit(fg, a_rows, 1, merged=False, early=early)
    assert stats["amount"]["count"] == 5
    assert early.result()[1]["amount"]["count"] == 2  # what A had started, not used


def test_threads_appending_at_once_never_count_rows_twice(home: Path, catalog_url: str) -> None:
    writers, rounds = 3, 4
    projects = [fti.connect(home=home, catalog_url=catalog_url) for _ in range(writers)]
    group(projects[0]).insert(frame([0], [0], [0.0]))
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            fg = group(projects[i])
            for r in range(rounds):
                key = 100 * (i + 1) + r
                fg.insert(frame([key], [key], [float(key)]), write_mode="append")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    fg = group(projects[0])
    latest = fg.latest_commit_version()
    assert latest == writers * rounds
    for version in range(latest + 1):  # every commit's figures, merged or recomputed
        assert_same(fg.statistics(version), recomputed(fg, version))
    assert fg.statistics()["amount"]["count"] == 1 + writers * rounds
    for p in projects:
        p.close()


# The writer is SIGKILLed for real right after its commit and its record, before it stores the
# statistics state of its second insert.
KILLED_BEFORE_THE_STATE = """
import os, signal, sys
import fti
from fti.features import records
from tests.unit.features._data import frame

project = fti.connect(home=sys.argv[1], catalog_url=sys.argv[2])
fg = project.feature_store.get_or_create_feature_group(
    "crashy", primary_key=["cc_num"], event_time="ts", online_enabled=True
)
fg.insert(frame([1], [0], [1.0]))
records.save_statistics_state = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
fg.insert(frame([2, 3], [1, 2], [2.0, 3.0]), write_mode="append")
"""


def test_statistics_are_right_after_a_writer_was_killed_before_storing_its_state(
    home: Path, catalog_url: str
) -> None:
    root = str(Path(__file__).resolve().parents[3])
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_THE_STATE, str(home), catalog_url], cwd=root, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    with fti.connect(home=home, catalog_url=catalog_url) as project:
        fg = group(project, "crashy")
        assert fg.latest_commit_version() == 1 and state_version(fg) == 0
        assert fg.statistics(1)["amount"]["count"] == 3  # recovered commit: computed on demand
        fg.insert(frame([4], [3], [4.0]), write_mode="append")  # catches up from version 0's state
        amount = fg.statistics(2)["amount"]
        assert (amount["count"], amount["mean"]) == (4, 2.5)
        assert_same(fg.statistics(2), recomputed(fg, 2))
        assert state_version(fg) == 2
        fg.insert(frame([5], [4], [5.0]), write_mode="append")
        assert state_version(fg) == 3
        assert_same(fg.statistics(3), recomputed(fg, 3))


# An operation on the group: (kind, keys, value); the kinds cover every path of at_commit.
operations = st.lists(
    st.tuples(
        st.sampled_from(["append", "upsert", "no_statistics", "stream", "delete", "compact"]),
        st.lists(st.integers(0, 30), min_size=1, max_size=6, unique=True),
        st.floats(-1e3, 1e3, allow_nan=False),
    ),
    min_size=1,
    max_size=7,
)


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=operations)
@example(  # replaces a row after merged appends: recomputed, DuckDB's distinct estimate off by 2
    plan=[
        ("append", [0, 1], 0.0),
        ("upsert", [23, 0, 18, 21, 15, 1], 0.0),
        ("append", [0, 1, 2], 0.0),
        ("upsert", [0], 0.0),
        ("delete", [0, 23], 1.0),
        ("stream", [5], 2.0),
        ("compact", [0], 0.0),
    ]
)
def test_any_sequence_of_commits_gives_the_statistics_of_the_table(tmp_path_factory, plan) -> None:  # type: ignore[no-untyped-def]
    """Whatever mix of appends, upserts (new or existing keys), commits without statistics,
    streams, deletes and compactions: the latest statistics equal those recomputed over the
    table (the sketches are exact at this size; DuckDB's distinct estimate may be off by one)."""
    with fti.connect(home=tmp_path_factory.mktemp("stats")) as project:
        fg = group(project)
        fg.insert(frame([100], [0], [0.0]))
        appended = 200  # append-only keys never collide with stored (key, event time) pairs
        for kind, keys, value in plan:
            amounts = [value + k for k in keys]
            if kind == "append":
                fresh = list(range(appended, appended + len(keys)))
                appended += len(keys)
                fg.insert(frame(fresh, fresh, amounts), write_mode="append")
            elif kind == "upsert":  # keys at hour 0: replaces the rows of keys seen before
                fg.insert(frame(keys, [0] * len(keys), amounts))
            elif kind == "no_statistics":
                fg.insert(frame(keys, [1] * len(keys), amounts), statistics=False)
            elif kind == "stream":
                fresh = list(range(appended, appended + len(keys)))
                appended += len(keys)
                fg.insert_stream([frame(fresh, fresh, amounts)])
            elif kind == "delete":
                fg.delete_records(pd.DataFrame({"cc_num": keys}))
            else:
                fg.compact()
            latest = fg.latest_commit_version()
            stored = records.commit_statistics(project.backends.catalog, fg.id, latest)
            assert stored is not None
            if stored[1] is not None:  # computed at the commit (merged, carried or recomputed)
                assert_same(stored[1], recomputed(fg, latest))
