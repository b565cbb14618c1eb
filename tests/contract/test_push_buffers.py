"""Every push buffer passes the one contract suite: SQLite (a temp file) and Redis (a real server)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fti.storage.buffer.base import PushBuffer
from fti.storage.buffer.redis import RedisPushBuffer
from fti.storage.buffer.sqlite import SqlitePushBuffer
from fti.testing.contracts.buffer import PushBufferContract

_redis_db = itertools.count(40)


def _sqlite(request: pytest.FixtureRequest) -> PushBuffer:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return SqlitePushBuffer(f"sqlite:///{tmp_path / 'push_buffer.db'}")


def _redis(request: pytest.FixtureRequest) -> PushBuffer:
    server = request.getfixturevalue("redis_server")
    buffer = RedisPushBuffer(server.url(next(_redis_db) % 64))
    buffer._client.flushdb()
    return buffer


IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest], PushBuffer]] = {
    "sqlite": _sqlite,
    "redis": _redis,
}


class TestPushBuffers(PushBufferContract):
    @pytest.fixture(
        params=[
            pytest.param(name, marks=[pytest.mark.redis] if name == "redis" else [])
            for name in IMPLEMENTATIONS
        ]
    )
    def push_buffer(self, request: pytest.FixtureRequest) -> Iterator[PushBuffer]:
        buffer = IMPLEMENTATIONS[request.param](request)
        yield buffer
        buffer.close()
