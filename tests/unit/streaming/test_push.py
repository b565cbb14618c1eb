"""fg.push: online at once, offline through the durable buffer in micro-batches, bad input refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti.streaming import committer
from fti.streaming.committer import DEAD_SUFFIX, Committer

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FEATURES = [fti.Feature("cc_num", "int64"), fti.Feature("ts", "timestamp"), fti.Feature("amount", "float64")]


def rows(keys: list[int], hours: list[float], amounts: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"cc_num": keys, "ts": [T0 + timedelta(hours=h) for h in hours], "amount": amounts})


def group(
    project: fti.Project, name: str = "tx", **kwargs: object
) -> fti.features.feature_group.FeatureGroup:  # type: ignore[name-defined]
    return project.feature_store.get_or_create_feature_group(
        name, primary_key=["cc_num"], event_time="ts", online_enabled=True, features=FEATURES, **kwargs
    )


@pytest.fixture
def project(home: Path) -> Iterator[fti.Project]:
    proj = fti.connect(home=home)
    # a committer that commits only when asked (commit_pushed) or at close
    committer.start(proj, every_rows=10**9, every_seconds=3600)
    yield proj
    proj.close()


def offline(fg: object) -> list[tuple[int, datetime, float]]:
    table = fg.read_arrow()  # type: ignore[attr-defined]
    return sorted(zip(*(table.column(c).to_pylist() for c in ("cc_num", "ts", "amount")), strict=True))


def test_push_is_online_at_once_and_offline_after_the_commit(project: fti.Project) -> None:
    fg = group(project)
    result = fg.push(rows([1, 2, 1], [0, 1, 2], [10.0, 20.0, 30.0]))
    assert (result.rows, result.online_rows) == (3, 2)  # the latest row per key online
    assert [r["amount"] for r in fg.online_lookup([{"cc_num": 1}, {"cc_num": 2}])] == [30.0, 20.0]
    assert fg.latest_commit_version() is None  # not committed yet: buffered
    assert project.backends.buffer.stats(fg.table_name).rows == 3
    assert fg.commit_pushed() == 3
    assert offline(fg) == [
        (1, T0, 10.0),
        (1, T0 + timedelta(hours=2), 30.0),
        (2, T0 + timedelta(hours=1), 20.0),
    ]
    assert project.backends.buffer.stats(fg.table_name).entries == 0
    [commit] = fg.commits()
    assert commit.rows_inserted == 3 and commit.operation == "insert"
    # the offline commit re-applied the rows online and recorded its version
    assert project.backends.online.applied_version(fg.table_name) == 0
    assert fg.commit_pushed() == 0  # nothing left


def test_replayed_and_repeated_pushes_are_idempotent_by_key_and_event_time(project: fti.Project) -> None:
    fg = group(project)
    fg.push(rows([1, 2], [0, 0], [1.0, 2.0]))
    fg.push(rows([1, 2], [0, 0], [1.0, 2.0]))  # a client retry of the same rows
    fg.push(rows([1], [0], [5.0]))  # a correction: the same (key, event time), pushed last
    fg.commit_pushed()
    fg.push(rows([2], [0], [7.0]))  # the same pair again, in a later micro-batch
    fg.commit_pushed()
    assert offline(fg) == [(1, T0, 5.0), (2, T0, 7.0)]
    assert [r["amount"] for r in fg.online_lookup([{"cc_num": 1}, {"cc_num": 2}])] == [5.0, 7.0]


def test_an_older_push_never_overwrites_a_newer_online_row(project: fti.Project) -> None:
    fg = group(project)
    fg.push(rows([1], [5], [50.0]))
    fg.push(rows([1], [1], [10.0]))  # arrives late
    assert fg.online_lookup([{"cc_num": 1}])[0]["amount"] == 50.0  # type: ignore[index]
    fg.commit_pushed()
    assert fg.online_lookup([{"cc_num": 1}])[0]["amount"] == 50.0  # type: ignore[index]
    assert len(offline(fg)) == 2  # both are history


def test_push_and_insert_mix(project: fti.Project) -> None:
    fg = group(project)
    fg.insert(rows([1, 2], [0, 0], [1.0, 2.0]))
    fg.push(rows([1, 3], [1, 1], [11.0, 33.0]))
    fg.commit_pushed()
    assert [c.version for c in fg.commits()] == [0, 1]
    assert offline(fg) == [
        (1, T0, 1.0),
        (1, T0 + timedelta(hours=1), 11.0),
        (2, T0, 2.0),
        (3, T0 + timedelta(hours=1), 33.0),
    ]


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (
            rows([1], [0], [1.0]).drop(columns=["amount"]),
            fti.SchemaError,
            r"missing column\(s\) \['amount'\]",
        ),
        (rows([1], [0], [1.0]).assign(extra=1), fti.SchemaError, r"unexpected column\(s\) \['extra'\]"),
        (rows([1], [0], [1.0]).assign(amount="x"), fti.SchemaError, "column 'amount' has type string"),
        (
            rows([1], [0], [1.0]).assign(ts=lambda d: d["ts"].dt.tz_localize(None)),
            fti.SchemaError,
            "naive timestamps",
        ),
        (rows([1, 1], [0, 0], [1.0, 2.0]), fti.ValidationError, "duplicate"),
        (rows([1], [0], [1.0]).iloc[0:0], fti.ValidationError, "empty"),
        ({"cc_num": [1]}, fti.ValidationError, "pandas DataFrame"),
    ],
)
def test_bad_rows_are_refused_and_write_nothing(
    project: fti.Project, bad: object, error: type[Exception], message: str
) -> None:
    fg = group(project)
    fg.push(rows([1], [0], [1.0]))
    with pytest.raises(error, match=message):
        fg.push(bad)
    assert project.backends.buffer.stats(fg.table_name).entries == 1
    assert fg.online_lookup([{"cc_num": 1}])[0]["amount"] == 1.0  # type: ignore[index]


def test_a_group_without_a_schema_and_a_failing_suite_are_refused(project: fti.Project) -> None:
    import pandera.pandas as pa_

    bare = project.feature_store.get_or_create_feature_group("bare", primary_key=["cc_num"], event_time="ts")
    with pytest.raises(fti.SchemaError, match=r"has no schema yet.*declare features"):
        bare.push(rows([1], [0], [1.0]))
    suite = pa_.DataFrameSchema({"amount": pa_.Column(float, pa_.Check.ge(0))})
    checked = group(project, "checked", expectation_suite=suite)
    with pytest.raises(fti.ExpectationError):
        checked.push(rows([1], [0], [-1.0]))
    assert project.backends.buffer.topics("") == []
    checked.push(rows([1], [0], [-1.0]), validation="none")
    with pytest.raises(fti.ValidationError, match="'strict' or 'none'"):
        checked.push(rows([1], [0], [1.0]), validation="warn")


def test_the_committer_commits_every_n_rows_or_t_seconds(home: Path) -> None:
    with fti.connect(home=home) as project:
        running = committer.start(project, every_rows=5, every_seconds=3600)
        fg = group(project)
        fg.push(rows([1, 2], [0, 0], [1.0, 2.0]))
        time.sleep(0.5)
        assert fg.latest_commit_version() is None  # 2 rows < 5, and young
        fg.push(rows([3, 4, 5], [0, 0, 0], [3.0, 4.0, 5.0]))
        _wait(lambda: fg.latest_commit_version() == 0)
        assert len(offline(fg)) == 5
        committer.stop(project)
        assert committer.running(project) is None and running.failures == 0

        committer.start(project, every_rows=10**9, every_seconds=0.3)
        fg.push(rows([6], [0], [6.0]))
        _wait(lambda: fg.latest_commit_version() == 1)
        assert len(offline(fg)) == 6


def test_close_commits_what_this_process_pushed(home: Path) -> None:
    with fti.connect(home=home) as project:
        group(project).push(rows([1], [0], [1.0]))  # starts a committer with the defaults (5 s)
    with fti.connect(home=home) as project:
        assert offline(group(project)) == [(1, T0, 1.0)]
        assert project.backends.buffer.topics("") == []


def test_a_process_that_delegated_committing_leaves_its_pushes_buffered(home: Path) -> None:
    with fti.connect(home=home) as project:
        committer.delegate(project)  # as a stream service, whose committer process commits
        group(project).push(rows([1], [0], [1.0]))
        assert committer.running(project) is None
    with fti.connect(home=home) as project:  # the other committer: the rows were left to it
        fg = group(project)
        assert fg.latest_commit_version() is None and project.backends.buffer.stats(fg.table_name).rows == 1
        assert fg.commit_pushed() == 1 and offline(fg) == [(1, T0, 1.0)]


def test_a_killed_pusher_loses_nothing_it_acknowledged(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "pusher.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, pandas as pd, fti
            from datetime import UTC, datetime, timedelta
            from fti.streaming import committer
            project = fti.connect(home={str(home)!r})
            committer.start(project, every_rows=10**9, every_seconds=3600)  # never commits by itself
            fg = project.feature_store.get_feature_group("tx")
            t0 = datetime(2024, 1, 1, tzinfo=UTC)
            for i in range(10**6):
                fg.push(pd.DataFrame({{"cc_num": [i], "ts": [t0 + timedelta(hours=i)], "amount": [float(i)]}}))
                print(i, flush=True)  # acknowledged
            """
        )
    )
    with fti.connect(home=home) as project:
        group(project)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) == 40:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with fti.connect(home=home) as project:
        fg = group(project)
        replay = Committer(project)  # a restarted process replays the buffer
        assert sum(c.rows for c in replay.commit(force=True)) >= 40
        stored = {k for k, _, _ in offline(fg)}
        assert set(acknowledged) <= stored
        assert len(stored) == len(offline(fg))  # once each
        assert project.backends.buffer.topics("") == []


def test_only_the_lease_holder_commits(home: Path) -> None:
    from fti.streaming._tables import encode

    with fti.connect(home=home) as first, fti.connect(home=home) as second:
        fg = group(first)
        table = pa.Table.from_pandas(rows([1], [0], [1.0]), preserve_index=False)
        first.backends.buffer.append(fg.table_name, encode(table), 1)  # as a push would
        a, b = Committer(first), Committer(second)
        assert [c.rows for c in b.commit(force=True)] == [1]  # b takes the lease and commits
        first.backends.buffer.append(fg.table_name, encode(table.set_column(0, "cc_num", pa.array([2]))), 1)
        assert a.commit(force=True) == []  # b holds the lease: a commits nothing
        assert first.backends.buffer.stats(fg.table_name).rows == 1
        b.stop(flush=False)  # releases it
        assert [c.rows for c in a.commit(force=True)] == [1]
        a.stop(flush=False)
        assert offline(fg) == [(1, T0, 1.0), (2, T0, 1.0)]


def test_rows_pushed_before_a_schema_change_commit_with_nulls(project: fti.Project) -> None:
    fg = group(project)
    fg.insert(rows([9], [0], [9.0]))
    fg.push(rows([1], [0], [1.0]))
    fg.append_features([fti.Feature("channel", "string")])
    fg.push(rows([2], [0], [2.0]).assign(channel="web"))
    fg.commit_pushed()
    table = fg.read_arrow().sort_by("cc_num")
    assert table.column("channel").to_pylist() == [None, "web", None]


def test_rows_that_can_never_be_committed_go_to_the_dead_topic(project: fti.Project) -> None:
    fg = group(project)
    buffer = project.backends.buffer
    from fti.streaming._tables import encode

    good = pa.table({"cc_num": [1], "ts": pa.array([T0], pa.timestamp("us", tz="UTC")), "amount": [1.0]})
    buffer.append(fg.table_name, encode(good.set_column(2, "amount", pa.array(["x"]))), 1)  # bypassed checks
    fg.push(good)
    fg.commit_pushed()
    assert offline(fg) == [(1, T0, 1.0)]
    assert buffer.stats(fg.table_name + DEAD_SUFFIX).entries == 1
    assert buffer.stats(fg.table_name).entries == 0


def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
