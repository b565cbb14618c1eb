"""The scheduler loop end to end: a controllable clock, real subprocess pipelines, real catalogs.

Each test writes a pipeline module to a temp directory, deploys it, and drives ``Scheduler.tick``
while moving a ``ManualClock``; runs are real ``python -m fti.pipelines.runner`` processes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import fti
from fti.pipelines import fire_event
from fti.pipelines.runs import PipelineRun
from fti.pipelines.scheduler import ManualClock, Scheduler

T0 = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)

HEADER = """
import json, os, subprocess, sys, time
from pathlib import Path
import fti

OUT = Path({out!r})

def record(name, **data):
    with open(OUT / (name + ".jsonl"), "a") as fh:
        fh.write(json.dumps(data) + "\\n")
"""


def deploy(project: fti.Project, tmp_path: Path, body: str) -> Path:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    path = tmp_path / "pipes.py"
    path.write_text(HEADER.format(out=str(out)) + body)
    project.pipelines.deploy(path, now=T0)
    return out


def lines(out: Path, name: str) -> list[dict]:
    path = out / f"{name}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def runs(project: fti.Project, name: str) -> list[PipelineRun]:
    return sorted(project.pipelines.runs(name), key=lambda r: r.id)


def drive(schedulers: list[Scheduler], until: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for s in schedulers:
            s.tick()
        if until():
            return
        time.sleep(0.03)
    state = [
        (r.id, r.pipeline, r.status, r.exit_code, r.error)
        for r in schedulers[0].project.pipelines.runs(limit=None)
    ]
    raise AssertionError(f"condition not reached before the timeout; runs: {state}")


def process_dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def make_scheduler(clock: ManualClock) -> Iterator[Callable[..., Scheduler]]:
    made: list[Scheduler] = []
    opened: list[fti.Project] = []

    def make(project: fti.Project, *, own_connection: bool = False, **kwargs: object) -> Scheduler:
        if own_connection:
            project = fti.connect(settings=project.settings, project=project.name)
            opened.append(project)
        s = Scheduler(project, clock=clock, rng=random.Random(3), **kwargs)  # type: ignore[arg-type]
        made.append(s)
        return s

    yield make
    for s in made:
        s.shutdown()
    for p in opened:
        p.close()


def test_scheduled_run_fails_then_retries_with_backoff(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    out = deploy(
        project,
        tmp_path,
        """
@fti.feature_pipeline(schedule=fti.every(hours=1), retries=2, retry_backoff=60)
def flaky(project, start, end):
    record("flaky", start=start.isoformat(), end=end.isoformat())
    marker = OUT / "flaky.failed"
    if not marker.exists():
        marker.touch()
        raise RuntimeError("first attempt fails")
    print("second attempt ok")

@fti.feature_pipeline(schedule=fti.every(hours=1), retries=1, retry_backoff=10)
def always_fails(project, start, end):
    sys.exit(4)
""",
    )
    sched = make_scheduler(project)
    sched.tick()
    assert project.pipelines.runs() == []  # nothing due before the first fire time
    clock.set(T0 + HOUR - timedelta(seconds=25))  # 01:00:05
    first_tick = clock.now()
    drive(
        [sched], lambda: sorted(r.status for r in project.pipelines.runs()) == ["failed"] * 2 + ["queued"] * 2
    )
    flaky = runs(project, "flaky")
    assert flaky[0].status == "failed" and "RuntimeError: first attempt fails" in (flaky[0].error or "")
    assert (flaky[0].window_start, flaky[0].window_end) == (
        T0 - timedelta(seconds=30),
        T0 + timedelta(minutes=59, seconds=30),
    )
    assert flaky[0].trigger == "schedule" and flaky[0].attempt == 1
    # the retry waits: 60s * 2**0 * jitter in [1, 1.25]
    retry = flaky[1]
    assert retry.status == "queued" and retry.attempt == 2 and retry.retry_of == flaky[0].id
    assert timedelta(seconds=60) <= retry.not_before - first_tick <= timedelta(seconds=76)
    failing = runs(project, "always_fails")
    assert failing[0].exit_code == 4 and failing[1].status == "queued"
    assert timedelta(seconds=10) <= failing[1].not_before - first_tick <= timedelta(seconds=13)
    sched.tick()
    assert runs(project, "flaky")[1].status == "queued"  # backoff not elapsed
    clock.advance(80)
    drive(
        [sched],
        lambda: (
            runs(project, "flaky")[1].status == "succeeded"
            and runs(project, "always_fails")[1].status == "failed"
        ),
    )
    assert [x["start"] for x in lines(out, "flaky")] == [flaky[0].window_start.isoformat()] * 2  # type: ignore[union-attr]
    assert "second attempt ok" in project.pipelines.logs(runs(project, "flaky")[1].id)["stdout"]
    clock.advance(600)
    sched.tick()
    # retries exhausted after 1 + retries attempts; no third attempt
    assert [r.attempt for r in runs(project, "always_fails")] == [1, 2]
    assert len(runs(project, "flaky")) == 2


def test_timeout_kills_the_whole_process_group(
    sqlite_project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    out = deploy(
        sqlite_project,
        tmp_path,
        """
@fti.feature_pipeline(schedule=fti.every(hours=1), timeout="4s")
def hangs(project, start, end):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    (OUT / "pids").write_text(f"{os.getpid()} {child.pid}")
    time.sleep(120)
""",
    )
    sched = make_scheduler(sqlite_project)
    clock.set(T0 + HOUR)
    drive([sched], lambda: (out / "pids").exists())
    pids = [int(x) for x in (out / "pids").read_text().split()]
    assert not any(process_dead(p) for p in pids)
    drive([sched], lambda: runs(sqlite_project, "hangs")[0].status == "timed_out")
    run = runs(sqlite_project, "hangs")[0]
    assert "timed out after 4s" in (run.error or "") and run.exit_code is not None and run.exit_code < 0
    deadline = time.monotonic() + 5
    while not all(process_dead(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(process_dead(p) for p in pids), "the pipeline process or its grandchild survived"


def test_overlap_policies_forbid_allow_replace(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    body = ""
    for policy in ("forbid", "allow", "replace"):
        body += f'''
@fti.feature_pipeline(schedule=fti.every(minutes=1), concurrency="{policy}")
def slow_{policy}(project, start, end):
    record("slow_{policy}", start=start.isoformat())
    time.sleep(120)
'''
    out = deploy(project, tmp_path, body)
    sched = make_scheduler(project)
    clock.set(T0 + timedelta(seconds=31))  # 00:01:01
    drive([sched], lambda: all(lines(out, f"slow_{p}") for p in ("forbid", "allow", "replace")))
    clock.advance(60)  # the next fire time while all three still run
    drive([sched], lambda: len(lines(out, "slow_allow")) == 2 and len(lines(out, "slow_replace")) == 2)
    forbid = runs(project, "slow_forbid")
    assert [r.status for r in forbid] == ["running", "queued"]  # its window waits, never dropped
    assert [r.status for r in runs(project, "slow_allow")] == ["running", "running"]
    replace = runs(project, "slow_replace")
    assert [r.status for r in replace] == ["cancelled", "running"]
    assert f"replaced by run {replace[1].id}" in (replace[0].error or "")
    assert len(lines(out, "slow_forbid")) == 1
    sched.shutdown()  # Ctrl-C path: running runs are cancelled, nothing stays running
    assert not [r for r in project.pipelines.runs() if r.status == "running"]
    assert [r.status for r in runs(project, "slow_forbid")] == [
        "cancelled",
        "queued",
    ]  # for the next scheduler


def test_new_data_and_event_triggers(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    out = deploy(
        project,
        tmp_path,
        """
@fti.training_pipeline(trigger=fti.on_new_data("transactions", min_rows=3))
def retrain(project, event=None):
    fg = project.feature_store.get_feature_group("transactions")
    record("retrain", event=event, rows=int(fg.read_arrow().num_rows))

@fti.training_pipeline(trigger=fti.on_event("drift_detected"))
def on_drift(project, event):
    record("on_drift", event=event)
""",
    )
    fg = project.feature_store.get_or_create_feature_group(
        "transactions", primary_key=["id"], event_time="ts"
    )

    def insert(ids: list[int]) -> None:
        fg.insert(pd.DataFrame({"id": ids, "ts": [T0] * len(ids), "amount": [1.0] * len(ids)}))

    sched = make_scheduler(project)
    insert([1, 2])
    sched.tick()
    assert project.pipelines.runs() == []  # 2 rows < min_rows=3
    insert([3, 4])
    fire_event(project, "drift_detected", {"psi": 0.4, "feature": "amount"})
    drive([sched], lambda: len(lines(out, "retrain")) == 1 and len(lines(out, "on_drift")) == 1)
    retrain = lines(out, "retrain")[0]
    assert retrain["rows"] == 4 and retrain["event"]["rows"] == 4
    assert [c["rows"] for c in retrain["event"]["commits"]] == [2, 2]
    assert lines(out, "on_drift")[0]["event"]["payload"] == {"psi": 0.4, "feature": "amount"}
    drive([sched], lambda: all(r.status not in ("queued", "running") for r in project.pipelines.runs()))
    finished = project.pipelines.runs()
    assert all(r.status == "succeeded" for r in finished), [
        (r.status, r.exit_code, r.error) for r in finished
    ]
    assert {r.trigger for r in project.pipelines.runs()} == {"new_data", "event"}
    for _ in range(3):
        sched.tick()
    assert len(project.pipelines.runs()) == 2  # cursors advanced: nothing fires twice
    with pytest.raises(fti.ValidationError, match="invalid event name"):
        fire_event(project, "Drift Detected")


def test_two_schedulers_fire_each_slot_once_and_fail_over(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    out = deploy(
        project,
        tmp_path,
        """
@fti.feature_pipeline(schedule=fti.every(minutes=1))
def minutely(project, start, end):
    record("minutely", start=start.isoformat())
""",
    )
    a = make_scheduler(project, own_connection=True, lease_ttl=timedelta(seconds=30))
    b = make_scheduler(project, own_connection=True, lease_ttl=timedelta(seconds=30))
    clock.set(T0 + timedelta(seconds=31))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def loop(s: Scheduler) -> None:
        try:
            barrier.wait()
            for _ in range(15):
                s.tick()
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [a.is_leader, b.is_leader].count(True) == 1
    leader, follower = (a, b) if a.is_leader else (b, a)
    drive([leader, follower], lambda: [r.status for r in runs(project, "minutely")] == ["succeeded"])
    first = runs(project, "minutely")[0]
    assert first.owner == leader.holder and first.trigger_key == "schedule:2030-01-01T00:01:00+00:00"
    # the leader dies (stops ticking without releasing its lease); the follower takes over after the TTL
    clock.advance(20)
    follower.tick()
    assert not follower.is_leader
    clock.advance(40)  # 00:02:01: lease expired and the next fire time is due
    drive(
        [follower],
        lambda: len(runs(project, "minutely")) == 2 and runs(project, "minutely")[1].status == "succeeded",
    )
    second = runs(project, "minutely")[1]
    assert follower.is_leader and second.owner == follower.holder
    assert [x["start"] for x in lines(out, "minutely")] == [
        "2030-01-01T00:00:00+00:00",
        "2030-01-01T00:01:00+00:00",
    ]


def _abandon(scheduler: Scheduler) -> None:
    """Reap the handles a "crashed" in-process scheduler left, so nothing leaks from the test."""
    for proc in scheduler._procs.values():
        proc.popen.wait()
        for fh in proc._files:
            fh.close()
    scheduler._procs.clear()


def test_a_runner_killed_while_its_scheduler_was_dead_is_marked_failed_and_retried(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    out = deploy(
        project,
        tmp_path,
        """
@fti.feature_pipeline(schedule=fti.every(hours=1), retries=1, retry_backoff=1)
def long(project, start, end):
    marker = OUT / "started_once"
    if not marker.exists():
        marker.touch()
        (OUT / "pid").write_text(str(os.getpid()))
        time.sleep(120)
    record("long", start=start.isoformat())
""",
    )
    crashed = make_scheduler(project, own_connection=True)
    clock.set(T0 + HOUR)
    drive([crashed], lambda: (out / "pid").exists())
    orphan = int((out / "pid").read_text())
    assert runs(project, "long")[0].status == "running"
    # the scheduler "crashes": it never ticks again and never releases its lease or its run;
    # then its run's process is killed too (OOM killer, kill -9), so nothing records its end
    os.kill(orphan, signal.SIGKILL)
    crashed._procs[runs(project, "long")[0].id].popen.wait()
    survivor = make_scheduler(project, own_connection=True)
    survivor.tick()
    assert not survivor.is_leader and runs(project, "long")[0].status == "running"
    clock.advance(31)
    survivor.tick()
    assert survivor.is_leader
    first = runs(project, "long")[0]
    assert first.status == "failed" and "stopped while it was running" in (first.error or "")
    clock.advance(2)
    drive([survivor], lambda: runs(project, "long")[-1].status == "succeeded")
    history = runs(project, "long")
    assert [(r.attempt, r.status) for r in history] == [(1, "failed"), (2, "succeeded")]
    assert history[1].retry_of == history[0].id and len(lines(out, "long")) == 1
    _abandon(crashed)


def test_a_run_that_outlives_its_scheduler_records_its_own_end_and_is_not_run_again(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    """One run finishes while no scheduler is alive, the other is still running when the
    successor takes over: both record their own outcome and logs, and neither runs twice."""
    out = deploy(
        project,
        tmp_path,
        """
@fti.feature_pipeline(schedule=fti.every(hours=1), retries=2, retry_backoff=1)
def finishes_alone(project, start, end):
    record("finishes_alone", start=start.isoformat())  # the side effect
    while not (OUT / "release_first").exists():
        time.sleep(0.05)
    print("finished with nobody watching")

@fti.feature_pipeline(schedule=fti.every(hours=1), retries=2, retry_backoff=1, timeout="1h")
def adopted(project, start, end):
    record("adopted", start=start.isoformat())
    while not (OUT / "release_second").exists():
        time.sleep(0.05)
    print("finished under the successor")
""",
    )
    crashed = make_scheduler(project, own_connection=True)
    clock.set(T0 + HOUR)
    drive([crashed], lambda: bool(lines(out, "finishes_alone")) and bool(lines(out, "adopted")))
    # the scheduler "crashes" (never ticks or releases anything again); one run ends meanwhile
    (out / "release_first").touch()
    first = runs(project, "finishes_alone")[0]
    crashed._procs[first.id].popen.wait()
    done = runs(project, "finishes_alone")[0]
    assert (done.status, done.exit_code) == ("succeeded", 0) and done.finished_at is not None
    assert "finished with nobody watching" in project.pipelines.logs(done.id)["stdout"]
    survivor = make_scheduler(project, own_connection=True)
    clock.advance(31)
    survivor.tick()
    assert survivor.is_leader
    second = runs(project, "adopted")[0]
    assert second.status == "running"  # still working: adopted, not killed and re-run
    (out / "release_second").touch()
    drive([survivor], lambda: runs(project, "adopted")[0].status == "succeeded")
    for _ in range(3):
        survivor.tick()
    assert "finished under the successor" in project.pipelines.logs(second.id)["stdout"]
    assert [r.status for r in runs(project, "finishes_alone")] == ["succeeded"]
    assert [r.status for r in runs(project, "adopted")] == ["succeeded"]
    assert len(lines(out, "finishes_alone")) == 1 and len(lines(out, "adopted")) == 1  # once each
    _abandon(crashed)


def test_missed_runs_after_downtime_latest_or_skip_and_pause(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    out = deploy(
        project,
        tmp_path,
        """
@fti.feature_pipeline(schedule="0 * * * *")
def catch_up(project, start, end):
    record("catch_up", start=start.isoformat(), end=end.isoformat())

@fti.feature_pipeline(schedule="0 * * * *", missed="skip")
def skipper(project, start, end):
    record("skipper", start=start.isoformat())
""",
    )
    sched = make_scheduler(project)
    clock.set(T0 + 5 * HOUR + timedelta(minutes=10))  # down from 00:00:30 to 05:10:30
    drive([sched], lambda: any(r.status == "succeeded" for r in runs(project, "catch_up")))
    for _ in range(3):
        sched.tick()
    missed, ran = runs(project, "catch_up")  # one run, never a burst of five
    assert missed.status == "cancelled" and "4 fire time(s) missed" in (missed.error or "")
    assert ran.status == "succeeded" and ran.trigger == "schedule"
    assert lines(out, "catch_up") == [
        {"start": "2030-01-01T04:00:00+00:00", "end": "2030-01-01T05:00:00+00:00"}
    ]
    assert [r.status for r in runs(project, "skipper")] == ["cancelled"]  # late fire times skipped
    project.pipelines.pause("catch_up")
    clock.set(datetime(2030, 1, 1, 6, 0, 5, tzinfo=UTC))
    drive(
        [sched],
        lambda: len(runs(project, "skipper")) == 2 and runs(project, "skipper")[1].status == "succeeded",
    )
    assert lines(out, "skipper") == [{"start": "2030-01-01T05:00:00+00:00"}]  # on time: it runs
    assert len(runs(project, "catch_up")) == 2  # paused


def test_retry_after_a_redeploy_runs_the_fixed_code(
    sqlite_project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    broken = """
@fti.feature_pipeline(schedule=fti.every(hours=1), retries=1, retry_backoff=5)
def buggy(project, start, end):
    raise ZeroDivisionError("bug")
"""
    out = deploy(sqlite_project, tmp_path, broken)
    sched = make_scheduler(sqlite_project)
    clock.set(T0 + HOUR)
    drive([sched], lambda: [r.status for r in runs(sqlite_project, "buggy")] == ["failed", "queued"])
    path = tmp_path / "pipes.py"
    path.write_text(path.read_text().replace('raise ZeroDivisionError("bug")', 'record("buggy", ok=True)'))
    fixed = sqlite_project.pipelines.deploy(path, now=clock.now())[0]
    clock.advance(7)
    drive([sched], lambda: runs(sqlite_project, "buggy")[1].status == "succeeded")
    first, retry = runs(sqlite_project, "buggy")
    assert "ZeroDivisionError: bug" in (first.error or "")
    assert retry.source_digest == fixed.source_digest != first.source_digest
    assert lines(out, "buggy") == [{"ok": True}]


def test_a_manual_run_consumes_the_rows_its_new_data_trigger_waited_for(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    out = deploy(
        project,
        tmp_path,
        """
@fti.training_pipeline(trigger=fti.on_new_data("transactions", min_rows=2))
def retrain(project, event=None):
    fg = project.feature_store.get_feature_group("transactions")
    record("retrain", rows=int(fg.read_arrow().num_rows), triggered=event is not None)
""",
    )
    fg = project.feature_store.get_or_create_feature_group(
        "transactions", primary_key=["id"], event_time="ts"
    )

    def insert(ids: list[int]) -> None:
        fg.insert(pd.DataFrame({"id": ids, "ts": [T0] * len(ids), "amount": [1.0] * len(ids)}))

    insert([1, 2, 3])
    manual = project.pipelines.run("retrain")  # trains on rows 1-3 by hand
    assert manual.status == "succeeded"
    sched = make_scheduler(project)
    for _ in range(3):
        sched.tick()
    assert [r.id for r in project.pipelines.runs("retrain")] == [manual.id]  # not retrained on them
    insert([4, 5])
    drive([sched], lambda: len(lines(out, "retrain")) == 2)
    assert lines(out, "retrain") == [
        {"rows": 3, "triggered": False},
        {"rows": 5, "triggered": True},
    ]


def test_a_retry_of_a_window_waits_for_the_next_slot_instead_of_being_cancelled(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    out = deploy(
        project,
        tmp_path,
        """
@fti.feature_pipeline(schedule=fti.every(minutes=1), retries=1, retry_backoff=20, concurrency="forbid")
def windows(project, start, end):
    record("attempts", start=start.isoformat())
    if start.minute == 0 and not (OUT / "failed_once").exists():
        (OUT / "failed_once").touch()
        raise RuntimeError("interrupted")
    if start.minute == 1:  # the next slot runs long: the retry of the first comes due meanwhile
        while not (OUT / "release").exists():
            time.sleep(0.05)
    record("done", start=start.isoformat())
""",
    )
    sched = make_scheduler(project)
    clock.set(T0 + timedelta(seconds=80))  # 00:01:50: window 00:00-00:01 fails, retry at 00:02:10+
    drive([sched], lambda: [r.status for r in runs(project, "windows")] == ["failed", "queued"])
    clock.set(T0 + timedelta(seconds=91))  # 00:02:01: window 00:01-00:02 starts and runs long
    drive([sched], lambda: len(lines(out, "attempts")) == 2)
    clock.advance(30)  # the retry of window 00:00 is due while window 00:01 runs
    for _ in range(5):
        sched.tick()
    retry = runs(project, "windows")[1]
    assert (retry.trigger, retry.status) == ("retry", "queued"), retry.error  # waits, not cancelled
    (out / "release").touch()
    drive(
        [sched], lambda: [r.status for r in runs(project, "windows")] == ["failed", "succeeded", "succeeded"]
    )
    assert sorted(x["start"] for x in lines(out, "done")) == [
        "2030-01-01T00:00:00+00:00",
        "2030-01-01T00:01:00+00:00",
    ]


DYING_LEADER = """
import os, signal, sys
from datetime import timedelta
from sqlalchemy import event
import fti
from fti.pipelines.scheduler import ManualClock, Scheduler
from tests.integration.test_pipeline_scheduler import T0

project = fti.connect(home=sys.argv[1], catalog_url=sys.argv[2])

@event.listens_for(project.backends.catalog.engine, "before_cursor_execute")
def die_creating_the_run(conn, cursor, statement, *args):
    if statement.lstrip().upper().startswith("INSERT INTO PIPELINE_RUNS"):
        os.kill(os.getpid(), signal.SIGKILL)  # the leader dies while firing the slot

Scheduler(project, clock=ManualClock(T0 + timedelta(seconds=31)), lease_ttl=timedelta(seconds=30)).tick()
"""


def test_a_slot_whose_leader_died_while_firing_it_runs_after_the_failover(
    home: Path, catalog_url: str, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    import signal
    import subprocess
    import sys

    project = fti.connect(home=home, catalog_url=catalog_url)
    try:
        out = deploy(
            project,
            tmp_path,
            """
@fti.feature_pipeline(schedule=fti.every(minutes=1))
def minutely(project, start, end):
    record("minutely", start=start.isoformat())
""",
        )
        root = str(Path(__file__).resolve().parents[2])
        dying = subprocess.run(
            [sys.executable, "-c", DYING_LEADER, str(home), catalog_url], cwd=root, capture_output=True
        )
        assert dying.returncode == -signal.SIGKILL, dying.stderr.decode()
        assert runs(project, "minutely") == []
        successor = make_scheduler(project)
        clock.set(T0 + timedelta(seconds=62))  # the dead leader's lease has expired
        drive([successor], lambda: [r.status for r in runs(project, "minutely")] == ["succeeded"])
        assert successor.is_leader
        assert lines(out, "minutely") == [{"start": "2030-01-01T00:00:00+00:00"}]
    finally:
        project.close()


def test_missed_fire_times_are_recorded_with_the_windows_to_backfill(
    project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    deploy(
        project,
        tmp_path,
        """
@fti.feature_pipeline(schedule="0 * * * *")
def hourly(project, start, end):
    record("hourly", start=start.isoformat())
""",
    )
    sched = make_scheduler(project)
    clock.set(T0 + 3 * HOUR + timedelta(minutes=10))  # no scheduler from 00:00:30 to 03:10:30
    drive([sched], lambda: any(r.status == "succeeded" for r in runs(project, "hourly")))
    missed, latest = runs(project, "hourly")
    assert (latest.window_start, latest.status) == (datetime(2030, 1, 1, 2, tzinfo=UTC), "succeeded")
    assert missed.status == "cancelled" and (missed.window_start, missed.window_end) == (
        datetime(2030, 1, 1, 0, tzinfo=UTC),
        datetime(2030, 1, 1, 2, tzinfo=UTC),
    )
    assert missed.error == (
        "not run: 2 fire time(s) missed (no scheduler running, or the pipeline paused; "
        "missed='latest'); to run their windows: fti pipelines backfill hourly --start "
        "2030-01-01T00:00:00+00:00 --end 2030-01-01T02:00:00+00:00"
    )


def test_a_scheduler_limited_to_some_pipelines_leaves_the_others_alone(
    sqlite_project: fti.Project, tmp_path: Path, clock: ManualClock, make_scheduler: Callable[..., Scheduler]
) -> None:
    """``Scheduler(only=[...])`` (how the demo runs the retraining that a monitor's event triggers):
    the other pipelines' triggers and schedules do not fire, and their cursors do not move."""
    project = sqlite_project
    out = deploy(
        project,
        tmp_path,
        """
@fti.training_pipeline(trigger=fti.on_event("drift_detected"))
def retrain(project, event):
    record("retrain", event=event)

@fti.training_pipeline(trigger=fti.on_event("drift_detected"))
def other(project, event):
    record("other", event=event)

@fti.feature_pipeline(schedule="*/5 * * * *")
def features(project, start, end):
    record("features")
""",
    )
    fire_event(project, "drift_detected", {"monitor": "m"})
    clock.advance(timedelta(minutes=6))  # past a fire time of the schedule
    only = make_scheduler(project, only=["retrain"])
    drive([only], lambda: len(lines(out, "retrain")) == 1 and not only.active_runs)
    for _ in range(3):
        only.tick()
    assert lines(out, "other") == [] and lines(out, "features") == []
    assert [r.pipeline for r in project.pipelines.runs()] == ["retrain"]
    everything = make_scheduler(project, holder="second")
    only.shutdown()
    clock.advance(timedelta(seconds=1))  # the released lease expires
    drive([everything], lambda: len(lines(out, "other")) == 1 and len(lines(out, "features")) == 1)
    assert len(lines(out, "retrain")) == 1  # its event was consumed once
