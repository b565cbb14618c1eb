"""Deploying pipelines to the catalog, manual runs and backfills (SQLite and PostgreSQL catalogs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import fti
from fti.errors import NotFoundError, ValidationError
from fti.storage.metadata.tables import pipeline_runs, pipelines

MODULE = '''
import json
from datetime import datetime
import fti

OUT = {out!r}

@fti.feature_pipeline(schedule="0 * * * *", timezone="Europe/Berlin", retries=2, timeout="1m")
def hourly(project, start: datetime, end: datetime, factor: int = 1) -> None:
    """Hourly features."""
    print("window", start.isoformat(), end.isoformat(), "factor", factor)
    with open(OUT, "a") as fh:
        fh.write(json.dumps({{"project": project.name, "start": start.isoformat(), "end": end.isoformat(),
                             "factor": factor, "type": type(factor).__name__}}) + "\\n")

@fti.training_pipeline(trigger=fti.on_new_data("transactions", min_rows=5))
def train(project) -> None:
    raise RuntimeError("model did not converge")
'''


def write_module(tmp_path: Path, body: str, name: str = "pipes.py") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.fixture
def module(tmp_path: Path) -> Path:
    return write_module(tmp_path, MODULE.format(out=str(tmp_path / "out.jsonl")))


def count(project: fti.Project, table) -> int:  # type: ignore[no-untyped-def]
    with project.backends.catalog.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_deploy_registers_pipelines_with_source_digest(project: fti.Project, module: Path) -> None:
    deployed = project.pipelines.deploy(module)
    assert [p.name for p in deployed] == ["hourly", "train"]
    hourly = project.pipelines.get("hourly")
    assert hourly.kind == "feature" and hourly.source_path == str(module.resolve())
    import hashlib

    assert hourly.source_digest == hashlib.sha256(module.read_bytes()).hexdigest()
    assert hourly.schedule is not None and hourly.schedule.timezone == "Europe/Berlin"
    assert hourly.retries == 2 and hourly.timeout == 60.0 and hourly.description == "Hourly features."
    assert hourly.next_run is not None and hourly.next_run > datetime.now(UTC)
    train = project.pipelines.get("train")
    assert train.trigger is not None and train.trigger.to_dict()["min_rows"] == 5
    # redeploy keeps paused state and does not duplicate
    project.pipelines.pause("hourly")
    project.pipelines.deploy(module)
    assert project.pipelines.get("hourly").paused is True
    assert [p.name for p in project.pipelines.list()] == ["hourly", "train"]
    assert project.pipelines.resume("hourly").paused is False
    assert project.pipelines.get("hourly").next_run is not None


def test_module_that_fails_to_import_registers_nothing(project: fti.Project, tmp_path: Path) -> None:
    good = """
import fti
@fti.feature_pipeline
def first(project): pass
"""
    broken = good + "\nraise KeyError('missing_config')\n"
    path = write_module(tmp_path, broken)
    with pytest.raises(ValidationError) as info:
        project.pipelines.deploy(path)
    message = info.value.message
    assert "cannot import pipeline module" in message and "KeyError: 'missing_config'" in message
    assert "Traceback (most recent call last)" in message and "Nothing was registered" in message
    assert count(project, pipelines) == 0

    bad_decl = write_module(
        tmp_path,
        good + "\n@fti.feature_pipeline(schedule='99 * * * *')\ndef second(project, start, end): pass\n",
        "bad.py",
    )
    with pytest.raises(ValidationError, match="invalid cron expression '99"):
        project.pipelines.deploy(bad_decl)
    assert count(project, pipelines) == 0

    empty = write_module(tmp_path, "x = 1\n", "empty.py")
    with pytest.raises(ValidationError, match="declares no pipeline"):
        project.pipelines.deploy(empty)
    with pytest.raises(NotFoundError, match="does not exist"):
        project.pipelines.deploy(tmp_path / "nope.py")
    assert count(project, pipelines) == 0


def test_unknown_pipeline_and_bad_run_input(project: fti.Project, module: Path) -> None:
    project.pipelines.deploy(module)
    with pytest.raises(NotFoundError, match=r"pipeline .nope. does not exist .*deployed: hourly, train"):
        project.pipelines.get("nope")
    with pytest.raises(NotFoundError):
        project.pipelines.run("nope")
    with pytest.raises(NotFoundError):
        project.pipelines.pause("nope")
    with pytest.raises(ValidationError, match="has no parameter 'colour'"):
        project.pipelines.run("hourly", params={"colour": "red"})
    with pytest.raises(ValidationError, match="set by fti"):
        project.pipelines.run("hourly", params={"start": "x"})
    t = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="must be after start"):
        project.pipelines.run("hourly", start=t, end=t)
    with pytest.raises(ValidationError, match="does not take a window"):
        project.pipelines.run("train", start=t, end=t + timedelta(hours=1))
    with pytest.raises(ValidationError, match=r"backfill end .* is not after start"):
        project.pipelines.backfill("hourly", t + timedelta(days=1), t)
    with pytest.raises(ValidationError, match="cannot be backfilled"):
        project.pipelines.backfill("train", t, t + timedelta(days=1))
    with pytest.raises(ValidationError, match="invalid step '1 parsec'"):
        project.pipelines.backfill("hourly", t, t + timedelta(days=1), step="1 parsec")
    with pytest.raises(ValidationError, match="timezone-aware"):
        project.pipelines.backfill("hourly", datetime(2024, 1, 1), datetime(2024, 1, 2))
    with pytest.raises(NotFoundError, match="pipeline run 999"):
        project.pipelines.logs(999)
    assert count(project, pipeline_runs) == 0


def test_manual_run_succeeds_and_failure_is_recorded_with_logs(
    project: fti.Project, module: Path, tmp_path: Path
) -> None:
    project.pipelines.deploy(module)
    start = datetime(2024, 3, 31, 0, tzinfo=UTC)
    ok = project.pipelines.run("hourly", params={"factor": "3"}, start=start, end=start + timedelta(hours=1))
    assert ok.status == "succeeded" and ok.exit_code == 0 and ok.attempt == 1 and ok.trigger == "manual"
    assert ok.duration is not None and ok.duration > 0
    written = json.loads((tmp_path / "out.jsonl").read_text())
    assert written == {
        "project": project.name,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "factor": 3,
        "type": "int",
    }
    logs = project.pipelines.logs(ok.id)
    assert "window 2024-03-31T00:00:00+00:00" in logs["stdout"]
    keys = project.backends.artifacts.list(f"pipelines/{project.name}/{ok.id}")
    assert keys == [
        f"pipelines/{project.name}/{ok.id}/stderr.log",
        f"pipelines/{project.name}/{ok.id}/stdout.log",
    ]

    failed = project.pipelines.run("train")
    assert failed.status == "failed" and failed.exit_code == 1
    assert failed.error is not None and "RuntimeError: model did not converge" in failed.error
    assert "Traceback" in project.pipelines.logs(failed.id)["stderr"]
    assert [r.id for r in project.pipelines.runs()] == [failed.id, ok.id]
    assert [r.id for r in project.pipelines.runs("hourly")] == [ok.id]
    assert [r.id for r in project.pipelines.runs(limit=1, offset=1)] == [ok.id]  # the next page
    assert project.pipelines.runs(offset=2) == []
    with pytest.raises(ValidationError, match="offset must be an integer >= 0"):
        project.pipelines.runs(offset=-1)


def test_backfill_runs_each_window_in_order(
    sqlite_project: fti.Project, module: Path, tmp_path: Path
) -> None:
    sqlite_project.pipelines.deploy(module)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    results = sqlite_project.pipelines.backfill(
        "hourly", start, start + timedelta(hours=1, minutes=30), step="1h"
    )
    assert [r.status for r in results] == ["succeeded", "succeeded"]
    assert [(r.window_start, r.window_end) for r in results] == [
        (start, start + timedelta(hours=1)),
        (start + timedelta(hours=1), start + timedelta(hours=1, minutes=30)),
    ]
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["start"] for x in lines] == [start.isoformat(), (start + timedelta(hours=1)).isoformat()]


def test_changed_source_is_refused_until_redeployed(sqlite_project: fti.Project, module: Path) -> None:
    sqlite_project.pipelines.deploy(module)
    module.write_text(module.read_text() + "\n# edited\n")
    run = sqlite_project.pipelines.run("train")
    assert run.status == "failed" and run.exit_code == 3
    assert "changed since it was deployed" in sqlite_project.pipelines.logs(run.id)["stderr"]


def test_window_and_event_input_is_checked(sqlite_project: fti.Project, tmp_path: Path) -> None:
    path = write_module(
        tmp_path,
        """
import fti

@fti.feature_pipeline
def manual_window(project, start, end, region: str):
    pass
""",
        "manual.py",
    )
    sqlite_project.pipelines.deploy(path)
    with pytest.raises(ValidationError, match="needs a window: pass start and end"):
        sqlite_project.pipelines.run("manual_window", params={"region": "eu"})
    t = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match=r"needs parameter\(s\) region"):
        sqlite_project.pipelines.run("manual_window", start=t, end=t + timedelta(hours=1))
    with pytest.raises(ValidationError, match="pass both start and end"):
        sqlite_project.pipelines.run("manual_window", params={"region": "eu"}, start=t)
    with pytest.raises(ValidationError, match="JSON-serialisable"):
        sqlite_project.pipelines.fire_event("drift_detected", {"at": object()})
    with pytest.raises(ValidationError, match="must be a dict"):
        sqlite_project.pipelines.fire_event("drift_detected", ["not", "a", "dict"])  # type: ignore[arg-type]
    assert count(sqlite_project, pipeline_runs) == 0


def test_redeploy_pauses_pipelines_the_file_no_longer_declares(project: fti.Project, tmp_path: Path) -> None:
    two = """
import fti

@fti.feature_pipeline(schedule="0 * * * *")
def kept(project, start, end): pass

@fti.feature_pipeline(schedule="0 * * * *")
def dropped(project, start, end): pass
"""
    path = write_module(tmp_path, two)
    project.pipelines.deploy(path)
    old_digest = project.pipelines.get("kept").source_digest
    path.write_text(two[: two.index("\n@fti.feature_pipeline", two.index("def kept"))])  # drop `dropped`
    deployed = project.pipelines.deploy(path)
    assert [p.name for p in deployed] == ["kept"]
    kept = project.pipelines.get("kept")
    assert kept.source_digest != old_digest and not kept.paused
    assert project.pipelines.get("dropped").paused is True


def test_async_pipeline_is_awaited(sqlite_project: fti.Project, tmp_path: Path) -> None:
    path = write_module(
        tmp_path,
        """
import asyncio
import fti

@fti.inference_pipeline
async def score(project, batch: int = 1):
    await asyncio.sleep(0)
    print("scored batch", batch * 2)
""",
        "async_pipes.py",
    )
    sqlite_project.pipelines.deploy(path)
    run = sqlite_project.pipelines.run("score", params={"batch": 21})
    assert run.status == "succeeded", run.error
    assert sqlite_project.pipelines.logs(run.id)["stdout"] == "scored batch 42\n"


FLAKY = """
from pathlib import Path
import fti

COUNTS = Path({counts!r})

def attempt(key):
    path = COUNTS / key
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n

@fti.feature_pipeline(retries=2, retry_backoff="0.1s")
def flaky(project, fail_times: int = 2):
    if attempt("flaky") <= fail_times:
        raise RuntimeError("transient")

@fti.feature_pipeline(retries=1, retry_backoff="0.1s")
def windows(project, start, end):
    if attempt(start.isoformat()) == 1:
        raise RuntimeError("first attempt of " + start.isoformat())
"""


def test_manual_runs_and_backfills_retry_per_policy_unless_told_not_to(
    project: fti.Project, tmp_path: Path
) -> None:
    counts = tmp_path / "counts"
    counts.mkdir()
    project.pipelines.deploy(write_module(tmp_path, FLAKY.format(counts=str(counts))))
    seen: list[tuple[int, str, int, float | None]] = []
    result = project.pipelines.run(
        "flaky", on_attempt=lambda run, total, delay: seen.append((run.attempt, run.status, total, delay))
    )
    assert (result.status, result.attempt, result.trigger) == ("succeeded", 3, "retry")
    history = sorted(project.pipelines.runs("flaky"), key=lambda r: r.id)
    assert [(r.attempt, r.status) for r in history] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert {r.retry_of for r in history[1:]} == {history[0].id}
    assert [(a, s, t) for a, s, t, _ in seen] == [(1, "failed", 3), (2, "failed", 3), (3, "succeeded", 3)]
    assert seen[0][3] is not None and 0.1 <= seen[0][3] <= 0.125  # backoff with jitter
    assert seen[1][3] is not None and 0.2 <= seen[1][3] <= 0.25 and seen[2][3] is None

    once = project.pipelines.run("flaky", params={"fail_times": "9"}, retries=False)
    assert (once.status, once.attempt) == ("failed", 1)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    results = project.pipelines.backfill("windows", start, start + timedelta(hours=2), step="1h")
    assert [(r.status, r.attempt) for r in results] == [("succeeded", 2), ("succeeded", 2)]
    assert [r.window_start for r in results] == [start, start + timedelta(hours=1)]
    (counts / "flaky").unlink()
    failed = project.pipelines.backfill(
        "windows", start + timedelta(hours=5), start + timedelta(hours=6), step="1h", retries=False
    )
    assert [(r.status, r.attempt) for r in failed] == [("failed", 1)]


ESCAPING = """
import os, subprocess, time
from pathlib import Path
import fti

OUT = Path({out!r})

def escape(name):
    # a grandchild in a session (and process group) of its own: the group kill does not reach it
    child = subprocess.Popen(["setsid", "sleep", "1000"])
    (OUT / name).write_text(str(child.pid))

@fti.feature_pipeline(timeout="6s")
def times_out(project):
    escape("times_out")
    time.sleep(60)

@fti.feature_pipeline
def returns(project):
    escape("returns")
"""


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.parametrize("name, status", [("times_out", "timed_out"), ("returns", "succeeded")])
def test_descendants_in_new_sessions_do_not_outlive_the_run(
    sqlite_project: fti.Project, tmp_path: Path, name: str, status: str
) -> None:
    import os
    import signal
    import time

    sqlite_project.pipelines.deploy(write_module(tmp_path, ESCAPING.format(out=str(tmp_path))))
    run = sqlite_project.pipelines.run(name)
    assert run.status == status, run.error
    pid = int((tmp_path / name).read_text())
    deadline = time.monotonic() + 5
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = not _dead(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)  # do not leave it behind whatever the outcome
    assert not alive, f"the run's grandchild {pid} in its own session survived the run"
