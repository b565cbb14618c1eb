"""A project whose online store is a real Redis server, driven through the public FeatureGroup API."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import redis

import fti
from fti.storage.online.redis import RedisOnlineStore
from fti.testing.servers import RedisServer

pytestmark = pytest.mark.redis

T0 = datetime(2024, 1, 1, tzinfo=UTC)
_db = itertools.count(20)


def frame(keys: list[int], hours: list[int], amounts: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cc_num": keys,
            "ts": [T0 + timedelta(hours=h) for h in hours],
            "amount": amounts,
            "category": [f"c{k}" for k in keys],
        }
    )


@pytest.fixture
def online_url(redis_server: RedisServer) -> Iterator[str]:
    url = redis_server.url(next(_db) % 64)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.close()


@pytest.fixture
def project(tmp_path: Path, online_url: str) -> Iterator[fti.Project]:
    proj = fti.connect(home=tmp_path / "home", online_url=online_url)
    yield proj
    proj.close()


def test_insert_lookup_and_materialize_catch_up(
    project: fti.Project, online_url: str, tmp_path: Path
) -> None:
    assert isinstance(project.backends.online, RedisOnlineStore)
    fg = project.feature_store.get_or_create_feature_group(
        "transactions", version=1, primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    result = fg.insert(frame([1, 1, 2], [0, 3, 1], [1.0, 3.0, 2.0]))
    assert result.online_rows == 2
    rows = fg.online_lookup([{"cc_num": 2}, {"cc_num": 99}, {"cc_num": 1}, {"cc_num": 2}])
    assert rows[1] is None
    assert rows[0] == rows[3] == {"cc_num": 2, "ts": T0 + timedelta(hours=1), "amount": 2.0, "category": "c2"}
    assert rows[2] is not None and rows[2]["amount"] == 3.0

    fg.insert(frame([1], [2], [-1.0]))  # arrives late: older than the stored row
    assert fg.online_lookup([{"cc_num": 1}])[0]["amount"] == 3.0  # type: ignore[index]

    # A crash between the offline commit and the online write: materialize catches up.
    project.backends.offline.write(
        fg.table_name,
        pa.Table.from_pandas(frame([1, 3], [9, 9], [9.0, 30.0]), preserve_index=False),
        merge_keys=["cc_num", "ts"],
    )
    assert fg.online_lookup([{"cc_num": 3}]) == [None]
    assert fg.materialize() == 3
    assert [r["amount"] for r in fg.online_lookup([{"cc_num": 1}, {"cc_num": 3}]) if r] == [9.0, 30.0]
    assert fg.materialize() == 0
    assert project.backends.online.applied_version(fg.table_name) == fg.latest_commit_version()

    # Redis restarted without persistence (emptied), then a fresh connection (another process)
    # refills it on connect: the applied version it lost no longer matches the catalog's.
    with redis.Redis.from_url(online_url) as client:
        client.flushdb()
    again = fti.connect(home=tmp_path / "home", online_url=online_url)
    try:
        lookup = again.feature_store.get_feature_group("transactions").online_lookup([{"cc_num": 3}])
        assert lookup[0] is not None and lookup[0]["amount"] == 30.0
        assert again.backends.online.applied_version(fg.table_name) == fg.latest_commit_version()
    finally:
        again.close()


def test_append_features_and_delete(project: fti.Project, online_url: str) -> None:
    fg = project.feature_store.get_or_create_feature_group(
        "cards", version=1, primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    fg.insert(frame([1], [0], [1.0]))
    fg.append_features([fti.Feature("flag", "bool")])
    fg.insert(frame([2], [1], [2.0]).assign(flag=[True]))
    first, second = fg.online_lookup([{"cc_num": 1}, {"cc_num": 2}])
    assert first is not None and first["flag"] is None
    assert second is not None and second["flag"] is True

    client = redis.Redis.from_url(online_url)
    try:
        assert len(client.keys("fti:*")) == 4  # two rows, the table's metadata and generation
        fg.delete()
        assert client.keys("fti:*") == []
    finally:
        client.close()
    assert project.backends.online.read(fg.table_name, [(1,)]) == [None]


def test_vectors_and_their_index_on_redis(project: fti.Project) -> None:
    import numpy as np

    from fti.storage.vector.hnsw import distances_to

    items = project.feature_store.get_or_create_feature_group(
        "items", primary_key=["item_id"], event_time="ts", online_enabled=True,
        features=[fti.Feature("item_id", "int64"), fti.Feature("ts", "timestamp"),
                  fti.Feature("category", "string"), fti.Feature("emb", "vector[6]")],
        embedding_index=fti.EmbeddingIndex("emb", metric="l2"),
    )  # fmt: skip
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((40, 6)).astype(np.float32)
    items.insert(
        pd.DataFrame(
            {
                "item_id": range(40),
                "ts": [T0] * 40,
                "category": [("a", "b")[i % 2] for i in range(40)],
                "emb": list(vectors),
            }
        )
    )
    row = items.online_lookup([{"item_id": 7}])[0]
    assert row is not None and np.array_equal(np.asarray(row["emb"], dtype=np.float32), vectors[7])
    query = rng.standard_normal(6)
    found = items.find_neighbors(query, k=5, filter="category = 'b'")
    odd = np.arange(1, 40, 2)
    expected = odd[np.argsort(distances_to(query, vectors[odd], "l2"), kind="stable")[:5]]
    assert found["item_id"].tolist() == expected.tolist()
    assert all(
        np.array_equal(np.asarray(v, dtype=np.float32), vectors[i])
        for i, v in zip(found["item_id"], found["emb"], strict=True)
    )
