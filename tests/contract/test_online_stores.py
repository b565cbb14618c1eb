"""Every online store passes the one contract suite: SQLite (a temp file) and Redis (a real server)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fti.storage.online.base import OnlineStore
from fti.storage.online.redis import RedisOnlineStore
from fti.storage.online.sqlite import SqliteOnlineStore
from fti.testing.contracts.online import OnlineStoreContract
from fti.testing.contracts.online_push import PushedWritesContract

_redis_db = itertools.count(1)


def _sqlite(request: pytest.FixtureRequest) -> OnlineStore:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return SqliteOnlineStore(f"sqlite:///{tmp_path / 'online.db'}")


def _redis(request: pytest.FixtureRequest) -> OnlineStore:
    server = request.getfixturevalue("redis_server")
    store = RedisOnlineStore(server.url(next(_redis_db) % 64))
    store._client.flushdb()  # a db number is reused every 64 tests
    return store


IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest], OnlineStore]] = {
    "sqlite": _sqlite,
    "redis": _redis,
}


class TestOnlineStores(OnlineStoreContract, PushedWritesContract):
    @pytest.fixture(
        params=[
            pytest.param(name, marks=[pytest.mark.redis] if name == "redis" else [])
            for name in IMPLEMENTATIONS
        ]
    )
    def online_store(self, request: pytest.FixtureRequest) -> Iterator[OnlineStore]:
        store = IMPLEMENTATIONS[request.param](request)
        yield store
        store.close()
