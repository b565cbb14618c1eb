"""The streaming variant of the fraud windows equals the batch (DuckDB) windows on the generator's
transactions: offline row for row, online the latest row per card."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis

import fti
from examples.fraud import streaming
from examples.fraud.features import WINDOW_COLUMNS, window_features
from examples.fraud.generator import DATA_START, generate_profiles, generate_transactions
from fti.pipelines.streams import STREAM_ATTRIBUTE
from fti.streaming.processor import StreamProcessor
from fti.testing.servers import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    url = redis_server.url(61)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.close()


def test_stream_windows_equal_the_batch_windows(home: Path, redis_url: str) -> None:
    start, end = DATA_START, DATA_START + timedelta(days=10)
    with fti.connect(home=home) as project:
        stream = streaming.source(redis_url, project)
        published = streaming.replay(stream, start, end, cards=30, seed=3)
        spec = dataclasses.replace(getattr(streaming.card_windows_stream, STREAM_ATTRIBUTE), source=stream)
        with StreamProcessor(project, streaming.OUTPUT, spec) as processor:
            while processor.step():
                pass
            assert processor.status()["processed"] == published and processor.status()["dead_letters"] == 0
            fg = project.feature_store.get_feature_group(streaming.OUTPUT)
            online = fg.online_lookup([{"cc_num": c} for c in generate_profiles(30, 3)["cc_num"]])
        stored = fg.read().sort_values(["cc_num", "datetime"]).reset_index(drop=True)

    transactions = generate_transactions(generate_profiles(30, 3), start, end, 3)
    # the stream computes the window aggregates (published PUBLISH_DELAY after each transaction, as
    # the batch rows are); the batch rows also carry the transaction's own time and place (last_*,
    # the inputs of the on-demand distances), which the stream variant does not produce
    batch = window_features(transactions).sort_values(["cc_num", "datetime"]).reset_index(drop=True)
    aggregates = [c for c in WINDOW_COLUMNS if not c.startswith("last_")]
    assert len(stored) == len(batch) == published
    assert list(stored.columns) == aggregates
    pd.testing.assert_frame_equal(stored[["cc_num", "datetime"]], batch[["cc_num", "datetime"]])
    for column in aggregates[2:]:
        if column.startswith("tx_count"):
            assert (stored[column].to_numpy() == batch[column].to_numpy()).all(), column
        else:
            assert stored[column].to_numpy() == pytest.approx(batch[column].to_numpy(), rel=1e-12), column
    latest = batch.groupby("cc_num").tail(1).set_index("cc_num")
    for row in online:
        assert row is not None
        expected = latest.loc[row["cc_num"]]
        assert row["datetime"] == expected["datetime"] and row["tx_count_7d"] == expected["tx_count_7d"]
        assert row["amount_mean_1d"] == pytest.approx(expected["amount_mean_1d"], rel=1e-12)
