"""``fti pipelines`` and ``fti scheduler`` through click's runner and a real foreground process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

import fti
from fti.cli.main import cli
from fti.storage.metadata.tables import scheduler_leases

MODULE = """
import fti

@fti.feature_pipeline(schedule="*/5 * * * *", retries=1, timeout="30s")
def features(project, start, end, limit: int = 10):
    print("features", start.isoformat(), end.isoformat(), limit * 2)
"""


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_deploy_list_run_logs_pause_resume(tmp_path: Path) -> None:
    home = tmp_path / "home"
    module = tmp_path / "features.py"
    module.write_text(MODULE)
    code, out, err = run(home, "pipelines", "deploy", str(module))
    assert code == 0, err
    assert "deployed feature pipeline features: cron */5 * * * * (UTC)" in out
    code, out, _ = run(home, "pipelines", "list", "--json")
    listed = json.loads(out)
    assert [(p["name"], p["kind"], p["paused"], p["retries"]) for p in listed] == [
        ("features", "feature", False, 1)
    ]
    code, out, err = run(
        home,
        "pipelines",
        "run",
        "features",
        "--param",
        "limit=21",
        "--start",
        "2024-01-01T00:00",
        "--end",
        "2024-01-01T00:05",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "succeeded" and result["params"] == {"limit": "21"}
    assert result["start"] == "2024-01-01T00:00:00+00:00"
    code, out, _ = run(home, "pipelines", "logs", str(result["id"]), "--stream", "stdout")
    assert out.strip() == "features 2024-01-01T00:00:00+00:00 2024-01-01T00:05:00+00:00 42"
    code, out, _ = run(home, "pipelines", "runs", "features", "--json")
    assert [r["id"] for r in json.loads(out)] == [result["id"]]
    code, out, _ = run(home, "pipelines", "show", "features", "--json")
    shown = json.loads(out)
    assert shown["schedule"] == {"cron": "*/5 * * * *", "timezone": "UTC"} and len(shown["runs"]) == 1
    assert run(home, "pipelines", "pause", "features")[0] == 0
    assert json.loads(run(home, "pipelines", "list", "--json")[1])[0]["paused"] is True
    assert run(home, "pipelines", "resume", "features")[0] == 0
    assert json.loads(run(home, "pipelines", "list", "--json")[1])[0]["paused"] is False


def test_bad_input_gives_clear_errors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    broken = tmp_path / "broken.py"
    broken.write_text(
        "import fti\n\n@fti.feature_pipeline\ndef f(project):\n    pass\n\nimport does_not_exist_anywhere\n"
    )
    code, _, err = run(home, "pipelines", "deploy", str(broken))
    assert code == 2
    assert "ModuleNotFoundError: No module named 'does_not_exist_anywhere'" in err
    assert "Traceback (most recent call last)" in err and "Nothing was registered" in err
    assert json.loads(run(home, "pipelines", "list", "--json")[1]) == []
    code, _, err = run(home, "pipelines", "run", "ghost")
    assert code == 2 and "pipeline 'ghost' does not exist" in err
    module = tmp_path / "features.py"
    module.write_text(MODULE)
    run(home, "pipelines", "deploy", str(module))
    code, _, err = run(
        home, "pipelines", "backfill", "features", "--start", "2024-01-02", "--end", "2024-01-01"
    )
    assert code == 2 and "is not after start" in err
    code, _, err = run(
        home, "pipelines", "backfill", "features", "--start", "yesterday", "--end", "2024-01-01"
    )
    assert code == 2 and "invalid --start 'yesterday'" in err
    code, _, err = run(home, "pipelines", "run", "features", "--param", "oops")
    assert code == 2 and "use --param name=value" in err
    code, _, err = run(home, "--json", "pipelines", "logs", "12345")
    assert code == 2 and json.loads(err)["code"] == "not_found"
    assert json.loads(run(home, "pipelines", "runs", "--json")[1]) == []


def test_scheduler_runs_in_the_foreground_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    module = tmp_path / "tick.py"
    module.write_text(
        "import fti\n\n@fti.feature_pipeline(schedule=fti.every(seconds=1))\n"
        "def tick(project, start, end):\n    print('window', (end - start).total_seconds())\n"
    )
    assert run(home, "pipelines", "deploy", str(module))[0] == 0
    env = {**os.environ, "FTI_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fti.cli.main", "scheduler", "--tick", "0.2", "--lease-ttl", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with fti.connect(home=home) as project:
            deadline = time.monotonic() + 20
            holder = None
            while holder is None and time.monotonic() < deadline:
                with project.backends.catalog.engine.connect() as conn:
                    holder = conn.execute(select(scheduler_leases.c.holder)).scalar()
                time.sleep(0.1)
            assert holder is not None and holder.startswith("scheduler:")
            done: list = []
            while not done and time.monotonic() < deadline:
                done = [r for r in project.pipelines.runs("tick") if r.status == "succeeded"]
                time.sleep(0.1)
            assert done, "the real-time scheduler did not complete a run"
            assert project.pipelines.logs(done[0].id)["stdout"] == "window 1.0\n"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
            assert proc.returncode == 0, err
            assert "scheduler stopped" in err
            with project.backends.catalog.engine.connect() as conn:
                expires = conn.execute(select(scheduler_leases.c.expires_at)).scalar()
            from datetime import UTC, datetime

            assert expires is not None and expires <= datetime.now(UTC)  # lease released
            runs = project.pipelines.runs()
            assert not [r for r in runs if r.status == "running"]  # ours were cancelled
            # a window queued behind a running one is never dropped (issue 19 item 27): it stays
            # queued, never started, for the next scheduler
            assert all(r.started_at is None and r.pid is None for r in runs if r.status == "queued")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_retries_and_says_which_attempt_unless_no_retries(tmp_path: Path) -> None:
    home = tmp_path / "home"
    marker = tmp_path / "attempts"
    module = tmp_path / "flaky.py"
    module.write_text(
        f"""
from pathlib import Path
import fti

@fti.feature_pipeline(retries=2, retry_backoff="0.1s")
def flaky(project):
    path = Path({str(marker)!r})
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    if n < 3:
        raise RuntimeError("transient failure " + str(n))
"""
    )
    assert run(home, "pipelines", "deploy", str(module))[0] == 0
    code, out, err = run(home, "pipelines", "run", "flaky")
    assert code == 0, err
    assert "flaky: attempt 1 of 3 failed" in err and "RuntimeError: transient failure 1" in err
    assert "retrying in 0.1s: attempt 2 of 3" in err and "retrying in 0.2s: attempt 3 of 3" in err
    assert "flaky: attempt 3 of 3 succeeded" in err and ": succeeded" in out
    marker.unlink()
    code, out, err = run(home, "pipelines", "run", "flaky", "--no-retries", "--json")
    assert code == 1 and json.loads(out)["attempt"] == 1 and "attempt" not in err


def test_run_and_backfill_say_what_goes_on_while_they_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fti.cli import pipelines as pipelines_cli

    monkeypatch.setattr(pipelines_cli, "HEARTBEAT_SECONDS", 0.3)
    home = tmp_path / "home"
    module = tmp_path / "slow.py"
    module.write_text(
        "import time\nimport fti\n\n@fti.feature_pipeline(schedule='0 * * * *')\n"
        "def slow(project, start, end):\n    time.sleep(1.5)\n"
    )
    assert run(home, "pipelines", "deploy", str(module))[0] == 0
    code, out, err = run(home, "pipelines", "run", "slow", "--json")
    assert code == 0, err
    run_id = json.loads(out)["id"]
    lines = err.splitlines()
    assert lines[0].startswith("slow window ") and lines[0].endswith(f": run {run_id} started")
    assert any(f"run {run_id} still running" in line for line in lines[1:-1])  # heartbeat while it runs
    assert f"run {run_id} succeeded in " in lines[-1]
    code, out, err = run(
        home, "pipelines", "backfill", "slow", "--start", "2026-01-01T00:00", "--end", "2026-01-01T02:00"
    )
    assert code == 0, err
    assert "slow window 2026-01-01T00:00:00+00:00 to 2026-01-01T01:00:00+00:00: run" in err
    assert err.count(" started") == 2 and err.count(" succeeded in ") == 2
