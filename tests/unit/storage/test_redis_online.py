"""Redis-specific behaviour of the online store, on a real redis-server (the contract covers the rest)."""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from fti.errors import BackendError
from fti.plugins import online_store_from_url
from fti.storage.online.redis import RedisOnlineStore
from fti.testing.servers import RedisServer, free_port

pytestmark = pytest.mark.redis

T0 = datetime(2024, 1, 1, tzinfo=UTC)
_db = itertools.count(40)


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisOnlineStore]:
    store = RedisOnlineStore(redis_server.url(next(_db) % 64))
    store._client.flushdb()
    yield store
    store.close()


def rows(keys: list[int], hours: list[int], values: list[int]) -> pa.Table:
    return pa.table({"id": keys, "ts": [T0 + timedelta(hours=h) for h in hours], "v": values})


def commandstats(store: RedisOnlineStore) -> dict[str, int]:
    stats = store._client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def test_chosen_by_url_scheme(redis_server: RedisServer) -> None:
    store = online_store_from_url(redis_server.url(3))
    assert isinstance(store, RedisOnlineStore)
    store.close()


def test_unreachable_server_names_the_url_and_a_fix() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(BackendError, match="redis-server is running") as info:
        RedisOnlineStore(url)
    assert "127.0.0.1" in str(info.value) and "s3cret" not in str(info.value)


def test_invalid_url(redis_server: RedisServer) -> None:
    with pytest.raises(BackendError, match="invalid Redis online store URL"):
        RedisOnlineStore(f"redis://127.0.0.1:{redis_server.port}/not-a-db")


def test_missing_redis_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # what an environment without the package sees
    with pytest.raises(BackendError, match=r"install fti\[redis\]"):
        RedisOnlineStore(redis_server.url(0))
    with pytest.raises(BackendError, match=r"fti\[redis\]"):
        online_store_from_url(redis_server.url(0))


def test_read_of_many_keys_is_one_round_trip(store: RedisOnlineStore) -> None:
    n = 3_000
    store.write(
        "t", rows(list(range(n)), [0] * n, list(range(n))), key_columns=["id"], event_time="ts", version=0
    )
    store.read("t", [(0,)])  # loads and caches the table layout
    store._client.config_resetstat()
    got = store.read("t", [(k,) for k in range(-100, 1_000)])
    assert [None if r is None else r["v"] for r in got] == [None] * 100 + list(range(1_000))
    calls = commandstats(store)
    assert calls.pop("mget") == 1
    assert set(calls) <= {"info", "config|resetstat"}  # the generation check rides in the same MGET


def test_writes_are_batched_and_pipelined(store: RedisOnlineStore) -> None:
    store._client.config_resetstat()
    n = 9_000  # five Lua calls of at most 2,000 rows
    store.write(
        "t", rows(list(range(n)), [0] * n, list(range(n))), key_columns=["id"], event_time="ts", version=0
    )
    calls = commandstats(store)
    assert calls.get("evalsha", 0) + calls.get("eval", 0) == 5 + 1  # + the column-layout call
    assert store.read("t", [(n - 1,)])[0] == {"id": n - 1, "ts": T0, "v": n - 1}


def test_a_failed_batch_never_records_the_version(store: RedisOnlineStore) -> None:
    store.write("t", rows([1], [0], [1]), key_columns=["id"], event_time="ts", version=1)
    # A key of the wrong type where row 4,500 goes makes the third batch fail inside Redis.
    bad_key = store._row_prefix("t") + b"[4500]"
    store._client.rpush(bad_key, "not a row")
    n = 5_000
    with pytest.raises(BackendError, match="WRONGTYPE"):
        store.write(
            "t", rows(list(range(n)), [1] * n, list(range(n))), key_columns=["id"], event_time="ts", version=2
        )
    assert store.applied_version("t") == 1  # the rows written so far are not claimed
    store._client.delete(bad_key)
    store.write(
        "t", rows(list(range(n)), [1] * n, list(range(n))), key_columns=["id"], event_time="ts", version=2
    )
    assert store.applied_version("t") == 2
    assert [r["v"] for r in store.read("t", [(4_500,), (4_999,)]) if r is not None] == [4_500, 4_999]


def test_concurrent_writers_keep_the_latest_event(store: RedisOnlineStore, redis_server: RedisServer) -> None:
    url = store.url
    keys = list(range(500))
    errors: list[BaseException] = []

    def writer(hours: list[int]) -> None:
        other = RedisOnlineStore(url)
        try:
            for version, hour in enumerate(hours):
                other.write(
                    "t",
                    rows(keys, [hour] * 500, [hour] * 500),
                    key_columns=["id"],
                    event_time="ts",
                    version=version,
                )
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            other.close()

    threads = [threading.Thread(target=writer, args=(h,)) for h in ([5, 1, 9, 2], [8, 3, 7, 0], [4, 6])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {r["v"] for r in store.read("t", [(k,) for k in keys]) if r is not None} == {9}


def test_delete_table_removes_every_key_and_nothing_else(store: RedisOnlineStore) -> None:
    n = 2_500  # more keys than one SCAN/UNLINK batch
    store.write("t", rows(list(range(n)), [0] * n, [0] * n), key_columns=["id"], event_time="ts", version=0)
    store.write("t_2", rows([1], [0], [0]), key_columns=["id"], event_time="ts", version=0)
    store._client.set("somebody_else", "x")
    store.delete_table("t")
    remaining = sorted(store._client.keys("*"))
    assert remaining == sorted(
        [
            b"somebody_else",
            store._meta_key("t_2"),
            store._generation_key("t_2"),
            store._row_prefix("t_2") + b"[1]",
        ]
    )


def test_layout_is_stored_in_redis(store: RedisOnlineStore) -> None:
    store.write("t", rows([1], [0], [1]), key_columns=["id"], event_time="ts", version=3)
    meta = store._client.hgetall(store._meta_key("t"))
    generation = store._client.get(store._generation_key("t"))
    assert generation is not None and len(generation) == 8
    assert meta == {
        b"columns": b'[["id","int"],["ts","ts"],["v","int"]]',
        b"key_columns": b'["id"]',
        b"version": b"3",
    }
    row = store._client.get(store._row_prefix("t") + b"[1]")
    assert row == b"%019d" % ((1 << 62) + 1_704_067_200_000_000) + generation + b"[1,1704067200000000,1]"
