"""kill -9 of a running stream pipeline, 20 times while transactions keep arriving: afterwards
every window equals the batch computation (the fraud example's DuckDB windows) over every event
appended, so no acknowledged event was lost and no event was counted twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis

import fti
from examples.fraud import streaming
from examples.fraud.features import WINDOW_COLUMNS, window_features
from examples.fraud.generator import DATA_START, generate_profiles, generate_transactions
from fti.streaming import records
from fti.testing.servers import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TRIALS = 20
CARDS, DAYS, SEED = 60, 14, 5


def start(
    project: fti.Project, pipeline: fti.pipelines.pipeline.Pipeline, env: dict[str, str]
) -> subprocess.Popen[bytes]:  # type: ignore[name-defined]
    spec = {
        "project": project.name,
        "pipeline": pipeline.name,
        "pipeline_id": pipeline.id,
        "source_path": pipeline.source_path,
        "source_digest": pipeline.source_digest,
        "function": pipeline.function,
        "secrets": [],
        "parent_pid": os.getpid(),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "fti.pipelines.stream_runner", json.dumps(spec)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def heartbeat(project: fti.Project, pipeline_id: int) -> datetime | None:
    status = records.get_status(project.backends.catalog, [pipeline_id]).get(pipeline_id)
    return None if status is None else status.heartbeat_at


def test_kill_9_mid_stream_loses_nothing_and_counts_nothing_twice(
    home: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = redis_server.url(62)
    client = redis.Redis.from_url(url)
    client.flushdb()
    monkeypatch.setenv("FRAUD_STREAM_URL", url)  # read by examples/fraud/streaming.py
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "FTI_HOME": str(home)}
    transactions = generate_transactions(
        generate_profiles(CARDS, SEED), DATA_START, DATA_START + timedelta(days=DAYS), SEED
    )
    rows = transactions.loc[:, ["tid", "cc_num", "datetime", "amount", "category"]].to_dict("records")
    with fti.connect(home=home) as project:
        [pipeline] = project.pipelines.deploy(Path(streaming.__file__))
        stream = streaming.source(url, project)
        stream.publish(rows[:100])
        published = {"n": 100}

        def producer() -> None:  # the card network keeps sending while the pipeline is killed
            while published["n"] < len(rows) * 0.9 and not done.is_set():
                stream.publish(rows[published["n"] : published["n"] + 5])
                published["n"] += 5
                time.sleep(0.1)

        done = threading.Event()
        thread = threading.Thread(target=producer, daemon=True)
        thread.start()
        rng = random.Random(11)
        kills = 0
        try:
            for _ in range(TRIALS):
                started = datetime.now(UTC)
                proc = start(project, pipeline, env)
                deadline = time.monotonic() + 60
                while (
                    heartbeat(project, pipeline.id) or started
                ) <= started:  # consuming: kill it mid-stream
                    assert proc.poll() is None and time.monotonic() < deadline, "the pipeline did not start"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.5))
                proc.send_signal(signal.SIGKILL)
                assert proc.wait() == -signal.SIGKILL
                kills += 1
        finally:
            done.set()
            thread.join(timeout=120)
        stream.publish(rows[published["n"] :])
        proc = start(project, pipeline, env)  # the last run catches up, then stops cleanly
        deadline = time.monotonic() + 120
        while (
            client.xinfo_groups(streaming.STREAM)[0]["lag"]
            or client.xpending(streaming.STREAM, streaming.OUTPUT)["pending"]
        ):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        fg = project.feature_store.get_feature_group(streaming.OUTPUT)
        # what a killed committer left buffered is committed by the next committer once the dead
        # one's lease expires: drain the buffer as that next committer would
        from fti.streaming.committer import Committer

        drainer, deadline = Committer(project), time.monotonic() + 90
        while len(fg.read(columns=["cc_num"])) < len(rows):
            assert time.monotonic() < deadline, "the buffered rows were never committed"
            drainer.commit(force=True)
            time.sleep(0.5)
        stored = fg.read().sort_values(["cc_num", "datetime"]).reset_index(drop=True)
        online = fg.online_lookup([{"cc_num": c} for c in sorted(transactions["cc_num"].unique())])
    assert kills == TRIALS

    batch = window_features(transactions).sort_values(["cc_num", "datetime"]).reset_index(drop=True)
    assert len(stored) == len(batch) == len(rows)  # one row per event: none lost, none twice
    pd.testing.assert_frame_equal(stored[["cc_num", "datetime"]], batch[["cc_num", "datetime"]])
    for column in [c for c in WINDOW_COLUMNS[2:] if not c.startswith("last_")]:  # the aggregates
        if column.startswith("tx_count"):
            assert (stored[column].to_numpy() == batch[column].to_numpy()).all(), column
        else:
            assert stored[column].to_numpy() == pytest.approx(batch[column].to_numpy(), rel=1e-12), column
    latest = batch.groupby("cc_num").tail(1).set_index("cc_num")
    assert [r["tx_count_7d"] for r in online] == [int(latest.loc[r["cc_num"], "tx_count_7d"]) for r in online]  # type: ignore[index]
