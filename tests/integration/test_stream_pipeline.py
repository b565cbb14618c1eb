"""Stream pipelines on a real Redis server: the processor's output equals the batch computation,
malformed messages are dead letters, the declaration is checked, a crash at any step is harmless."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import redis

import fti
from fti.streaming import spec as stream_spec
from fti.streaming.processor import MESSAGE_ID, StreamProcessor
from fti.testing.servers import RedisServer

pytestmark = pytest.mark.redis

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SCHEMA = {"cc_num": "int64", "ts": "timestamp", "amount": "float64", "category": "string"}
WINDOWS = [fti.window.sliding("1h"), fti.window.sliding("1d")]
AGGS = [fti.window.count(name="tx_count"), fti.window.sum("amount"), fti.window.max("amount")]
_db = itertools.count(50)


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


def events(n: int, seed: int = 0) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    t = T0
    out = []
    for _ in range(n):
        t += timedelta(minutes=rng.randint(0, 40))
        out.append(
            {"cc_num": rng.randint(1, 6), "ts": t, "amount": round(rng.uniform(1, 500), 2), "category": "x"}
        )
    return out


def declare(source: fti.sources.RedisStream, /, **kwargs: Any) -> stream_spec.StreamSpec:
    options: dict[str, Any] = {
        "source": source,
        "schema": SCHEMA,
        "key": "cc_num",
        "event_time": "ts",
        "windows": WINDOWS,
        "aggregations": AGGS,
        "output": "card_windows",
        **kwargs,
    }
    return stream_spec.build(**options)


def reference(rows: list[dict[str, Any]]) -> pa.Table:
    table = pa.Table.from_pylist(rows)
    return fti.window.compute(table, key="cc_num", event_time="ts", windows=WINDOWS, aggregations=AGGS)


def assert_equal(stored: pa.Table, expected: pa.Table) -> None:
    order = [("cc_num", "ascending"), ("ts", "ascending")]
    stored, expected = stored.sort_by(order), expected.sort_by(order)
    assert stored.num_rows == expected.num_rows
    for name in expected.column_names:
        got, want = stored.column(name).to_pylist(), expected.column(name).to_pylist()
        if name.startswith(("amount_sum", "amount_max")):
            assert got == pytest.approx(want, rel=1e-12), name
        else:
            assert got == want, name  # keys, times and counts exactly: nothing lost, nothing twice


def drain(processor: StreamProcessor) -> None:
    while processor.step():
        pass


def test_the_output_equals_the_batch_computation_online_and_offline(
    project: fti.Project, redis_url: str
) -> None:
    source = fti.sources.RedisStream("tx", group="windows", url=redis_url, project=project)
    published = events(300)
    source.publish(published[:150])
    spec = declare(source, batch_size=37)
    with StreamProcessor(project, "card_windows", spec) as processor:
        drain(processor)
        source.publish(published[150:])
        drain(processor)
        status = processor.status()
        assert (status["processed"], status["lag"], status["dead_letters"]) == (300, 0, 0)
        fg = project.feature_store.get_feature_group("card_windows")
        expected = reference(published)
        # online: the latest row per card, at once
        online = fg.online_lookup([{"cc_num": k} for k in range(1, 7)])
        latest = {r["cc_num"]: r for r in expected.to_pylist()}  # rows sorted by key, time
        for row in online:
            assert row is not None and row == pytest.approx(latest[row["cc_num"]])
    # offline: every row, committed when the processor stopped
    assert_equal(fg.read_arrow(), expected)
    assert [f.name for f in fg.features or []] == [
        "cc_num",
        "ts",
        "tx_count_1h",
        "amount_sum_1h",
        "amount_max_1h",
        "tx_count_1d",
        "amount_sum_1d",
        "amount_max_1d",
    ]


def test_malformed_messages_are_dead_letters_not_a_crash(project: fti.Project, redis_url: str) -> None:
    source = fti.sources.RedisStream("tx", group="windows", url=redis_url, project=project)
    good = events(20)
    client = redis.Redis.from_url(redis_url)
    source.publish(good[:10])
    client.xadd("tx", {"cc_num": "x", "ts": "2024-01-01T00:00:00Z", "amount": "1", "category": "a"})
    client.xadd("tx", {"cc_num": "1", "ts": "2024-01-01T00:00:00", "amount": "1", "category": "a"})  # naive
    client.xadd("tx", {"cc_num": "1", "ts": "2024-01-01T00:00:00Z", "category": "a"})  # no amount
    client.xadd("tx", {"cc_num": "1", "ts": "2024-01-01T00:00:00Z", "amount": "nan", "category": "a"})
    source.publish(good[10:])
    with StreamProcessor(project, "card_windows", declare(source, batch_size=4)) as processor:
        drain(processor)
        count, letters = processor.dead_letters()
        assert count == 4 and processor.status()["processed"] == 20 and processor.status()["lag"] == 0
        reasons = sorted(d["reason"] for d in letters)
        assert reasons == [
            "field 'amount': expected a finite number, got 'nan'",
            "field 'cc_num': expected an integer, got 'x'",
            "field 'ts': '2024-01-01T00:00:00' is a naive time: give its UTC offset, e.g. 2024-01-01T00:00:00Z or 2024-01-01T00:00:00+00:00",
            "missing field 'amount'",
        ]
    assert_equal(project.feature_store.get_feature_group("card_windows").read_arrow(), reference(good))


def test_the_function_filters_and_derives(project: fti.Project, redis_url: str) -> None:
    def big_only(batch: pa.Table) -> pa.Table:
        kept = batch.filter(pc.greater(batch.column("amount"), 100))
        return kept.set_column(
            kept.schema.get_field_index("amount"), "amount", pc.multiply(kept.column("amount"), 2)
        )

    source = fti.sources.RedisStream("tx", group="windows", url=redis_url, project=project)
    published = events(100)
    source.publish(published)
    with StreamProcessor(project, "card_windows", declare(source, transform=big_only)) as processor:
        drain(processor)
    expected_events = [{**e, "amount": e["amount"] * 2} for e in published if e["amount"] > 100]
    assert_equal(
        project.feature_store.get_feature_group("card_windows").read_arrow(), reference(expected_events)
    )
    assert MESSAGE_ID == "__fti_message_id"


def test_a_function_that_drops_the_message_ids_is_an_error(project: fti.Project, redis_url: str) -> None:
    source = fti.sources.RedisStream("tx", group="windows", url=redis_url, project=project)
    source.publish(events(10))
    spec = declare(source, transform=lambda b: b.select(["cc_num", "ts", "amount"]).slice(0, 3))
    with (
        StreamProcessor(project, "card_windows", spec) as processor,
        pytest.raises(fti.ValidationError, match="keep that column"),
    ):
        processor.step()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "tx"}, "stream source"),
        ({"schema": {"cc_num": "int"}}, "unknown dtype 'int'"),
        ({"key": "amount"}, "key field 'amount' must be"),
        ({"event_time": "amount"}, "dtype 'timestamp'"),
        ({"aggregations": [fti.window.sum("category")]}, "not a number"),
        ({"output": "Card Windows"}, "feature group"),
        ({"allowed_lateness": "soon"}, "allowed_lateness"),
        ({"batch_size": 0}, "batch_size"),
        (
            {
                "aggregations": [fti.window.count(name="cc")],
                "windows": [fti.window.sliding("1h", name="num")],
                "key": "cc_num",
            },
            "clash",
        ),
    ],
)
def test_bad_declarations_are_refused(change: dict[str, Any], message: str, redis_url: str) -> None:
    source = fti.sources.RedisStream("tx", group="windows", url=redis_url)
    with pytest.raises(fti.ValidationError, match=message):
        declare(source, **change)


def test_a_second_processor_of_the_same_pipeline_is_refused(project: fti.Project, redis_url: str) -> None:
    source = fti.sources.RedisStream("tx", group="windows", url=redis_url, project=project)
    with (
        StreamProcessor(project, "card_windows", declare(source)),
        pytest.raises(fti.ConflictError, match="already"),
    ):
        StreamProcessor(project, "card_windows", declare(source)).open()


@pytest.mark.parametrize(
    "failpoint", ["after_write:2", "after_checkpoint:2", "after_write:5", "after_checkpoint:5"]
)
def test_a_crash_between_the_steps_neither_loses_nor_double_counts(
    project: fti.Project, redis_url: str, tmp_path: Path, failpoint: str
) -> None:
    source = fti.sources.RedisStream("tx", group="windows", url=redis_url, project=project)
    published = events(120, seed=3)
    source.publish(published)
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import fti
            from fti.streaming.processor import StreamProcessor
            from tests.integration.test_stream_pipeline import declare
            project = fti.connect(home={str(project.settings.home)!r})
            source = fti.sources.RedisStream("tx", group="windows", url={redis_url!r}, project=project)
            with StreamProcessor(project, "card_windows", declare(source, batch_size=10)) as processor:
                while processor.step():
                    pass
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "FTI_STREAM_FAILPOINT": failpoint}
    killed = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr.decode()
    env.pop("FTI_STREAM_FAILPOINT")
    finished = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=120)
    assert finished.returncode == 0, finished.stderr.decode()
    fg = project.feature_store.get_feature_group("card_windows")
    assert_equal(fg.read_arrow(), reference(published))
    assert redis.Redis.from_url(redis_url).xpending("tx", "windows")["pending"] == 0
