"""``fti scheduler`` runs deployed stream pipelines as services: started, restarted with backoff
after a crash, stopped when paused, with their state and lag in ``fti pipelines list/show``."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import redis
from click.testing import CliRunner

import fti
from fti.cli.main import cli
from fti.pipelines.scheduler import Scheduler
from fti.pipelines.services import service_status
from fti.testing.servers import RedisServer

pytestmark = pytest.mark.redis

T0 = datetime(2024, 1, 1, tzinfo=UTC)
_db = itertools.count(58)

MODULE = """
import pyarrow.compute as pc
import fti

SOURCE = fti.sources.RedisStream("tx", group="windows", url={url!r})


@fti.stream_pipeline(
    source=SOURCE,
    schema={{"cc_num": "int64", "ts": "timestamp", "amount": "float64"}},
    key="cc_num",
    event_time="ts",
    windows=[fti.window.sliding("1h"), fti.window.sliding("1d")],
    aggregations=[fti.window.count(name="tx_count"), fti.window.sum("amount")],
    restart_backoff="200ms",
    batch_size=25,
)
def card_windows(events):
    \"\"\"Per-card counts and sums over 1 hour and 1 day.\"\"\"
    if pc.any(pc.equal(events.column("amount"), 13.0)).as_py():
        raise RuntimeError("unlucky amount")
    return events
"""


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    url = redis_server.url(next(_db) % 64)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.close()


@pytest.fixture
def project(home: Path) -> Iterator[fti.Project]:
    proj = fti.connect(home=home)
    yield proj
    proj.close()


def wait(scheduler: Scheduler, condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        scheduler.tick()
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def events(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {"cc_num": i % 4, "ts": T0 + timedelta(minutes=7 * i), "amount": float(i % 11 + 1)}
        for i in range(start, start + n)
    ]


def expected(rows: list[dict[str, Any]]) -> pa.Table:
    return fti.window.compute(
        pa.Table.from_pylist(rows),
        key="cc_num",
        event_time="ts",
        windows=[fti.window.sliding("1h"), fti.window.sliding("1d")],
        aggregations=[fti.window.count(name="tx_count"), fti.window.sum("amount")],
    )


def cli_json(project: fti.Project, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--home", str(project.settings.home), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_stream_service_runs_restarts_after_a_crash_and_stops_when_paused(
    project: fti.Project, redis_url: str, tmp_path: Path
) -> None:
    module = tmp_path / "streams.py"
    module.write_text(MODULE.format(url=redis_url))
    [deployed] = project.pipelines.deploy(module)
    assert deployed.kind == "stream"
    source = fti.sources.RedisStream("tx", group="windows", url=redis_url)
    source.publish(events(0, 60))
    scheduler = Scheduler(project, tick_interval=0.1)
    try:
        status = lambda: service_status(project, [deployed])["card_windows"]  # noqa: E731
        first = wait(scheduler, lambda: status()["processed"] == 60 and status()["lag"] == 0 and status())
        assert first["state"] == "running" and first["restarts"] == 0 and first["dead_letters"] == 0
        assert first["watermark"] == (T0 + timedelta(minutes=7 * 59)).isoformat()
        listed = {p["name"]: p for p in cli_json(project, "pipelines", "list")}
        assert listed["card_windows"]["when"] == "stream service running, lag 0"
        shown = cli_json(project, "pipelines", "show", "card_windows")
        assert shown["service"]["pid"] == first["pid"] and shown["service"]["processed"] == 60

        # the offline commits run in the service's own committer process, while it runs
        [committer] = _committers(first["pid"])
        fg = project.feature_store.get_feature_group("card_windows")
        wait(scheduler, lambda: fg.read_arrow().num_rows == 60, timeout=30)

        os.kill(first["pid"], signal.SIGKILL)  # a crash: restarted after the backoff
        _wait_dead(committer)  # its committer goes with it
        second = wait(
            scheduler, lambda: status()["restarts"] == 1 and status()["state"] == "running" and status()
        )
        assert second["pid"] != first["pid"] and "killed by signal SIGKILL" in second["last_exit"]
        source.publish(events(60, 40))
        wait(scheduler, lambda: status()["processed"] == 100 and status()["lag"] == 0)
        [committer] = _committers(second["pid"])
        want = expected(events(0, 100)).to_pylist()
        latest = {row["cc_num"]: row for row in want}
        assert fg.online_lookup([{"cc_num": k} for k in range(4)]) == [latest[k] for k in range(4)]

        project.pipelines.pause("card_windows")
        stopped = wait(scheduler, lambda: status()["state"] == "stopped" and status())
        assert stopped["pid"] is None and "paused" in stopped["last_exit"]
        _wait_dead(second["pid"])
        _wait_dead(committer)
        # stopping committed its output rows: the offline table holds every row once
        stored = fg.read_arrow().sort_by([("cc_num", "ascending"), ("ts", "ascending")]).to_pylist()
        assert stored == sorted(want, key=lambda r: (r["cc_num"], r["ts"]))

        with pytest.raises(fti.ValidationError, match="is a stream pipeline"):
            project.pipelines.run("card_windows")
    finally:
        scheduler.shutdown()


def test_a_crashing_service_backs_off_and_says_why(
    project: fti.Project, redis_url: str, tmp_path: Path
) -> None:
    module = tmp_path / "streams.py"
    module.write_text(MODULE.format(url=redis_url))
    [deployed] = project.pipelines.deploy(module)
    fti.sources.RedisStream("tx", group="windows", url=redis_url).publish(
        [{"cc_num": 1, "ts": T0, "amount": 13.0}]
    )
    scheduler = Scheduler(project, tick_interval=0.1)
    try:
        status = lambda: service_status(project, [deployed])["card_windows"]  # noqa: E731
        seen: list[dict[str, Any]] = []

        def crashed(n: int) -> bool:
            now = status()
            if now["state"] == "backoff" and (not seen or now["restarts"] != seen[-1]["restarts"]):
                seen.append(now)
            return len(seen) >= n

        wait(scheduler, lambda: crashed(3), timeout=90)
        assert "RuntimeError: unlucky amount" in seen[0]["last_exit"]
        assert seen[0]["last_exit"].startswith("exit status 1")
        delays = [
            datetime.fromisoformat(s["next_start_at"]) - datetime.fromisoformat(s["updated_at"])
            for s in seen[:3]
        ]
        # 0.2 s, 0.4 s, 0.8 s (+0-25 % jitter): each wait about doubles
        assert delays[0] < timedelta(seconds=0.3) and delays[1] >= timedelta(seconds=0.39)
        assert delays[2] >= timedelta(seconds=0.79)
    finally:
        scheduler.shutdown()
    assert service_status(project, [deployed])["card_windows"]["state"] in ("backoff", "stopped")


def _committers(service: int) -> list[int]:
    """The committer processes started by the service process ``service``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == service and b"fti.pipelines.stream_committer" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _wait_dead(pid: int) -> None:
    # a committer finishes the commit it is in before it exits (once more than 10 s in the full
    # suite on a 2-core machine)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return  # exited, not yet reaped
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs")
