"""Redis push buffer: one Redis Stream per topic, in the Redis database of the online store.

Layout (``E`` is the percent-escaped topic, in braces so a topic's keys share a cluster slot):

- ``fti:buf:{E}`` — the stream; each entry has ``p`` (the payload) and ``r`` (its row count).
  Entry ids are Redis's ``<milliseconds>-<sequence>``, so the id also says when it was appended.
- ``fti:buf:topics`` — a set of the non-empty topics; ``fti:buf:rows`` — a hash of row counts.
- ``fti:buf:lease:<name>`` — a lease: the holder's name with a time to live, renewed by the holder.

Appends are one ``MULTI`` (entry, topic set, row count); removals one Lua call that deletes the
entries that still exist and adjusts the row count, so replayed removals are no-ops. Durability
is Redis's: with its default persistence an acknowledged entry survives the writer's death and a
Redis restart from its last snapshot or AOF fsync.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fti.errors import BackendError
from fti.storage.buffer.base import BufferEntry, TopicStats

_TOPICS = b"fti:buf:topics"
_ROWS = b"fti:buf:rows"

# KEYS[1] = stream, KEYS[2] = topic set, KEYS[3] = row-count hash; ARGV[1] = topic, ARGV[2..] = ids
_REMOVE_LUA = """
local removed = 0
for i = 2, #ARGV do
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #found > 0 then
    local fields = found[1][2]
    for j = 1, #fields, 2 do
      if fields[j] == 'r' then removed = removed + tonumber(fields[j + 1]) end
    end
    redis.call('XDEL', KEYS[1], ARGV[i])
  end
end
if removed > 0 then redis.call('HINCRBY', KEYS[3], ARGV[1], -removed) end
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return removed
"""

# KEYS[1] = lease key; ARGV = holder, ttl in ms
_ACQUIRE_LUA = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def _stream(topic: str) -> bytes:
    return b"fti:buf:{" + quote(topic, safe="_-.").encode() + b"}"


def _time(entry_id: str) -> datetime:
    return datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, UTC)


class RedisPushBuffer:
    """Push buffer at ``redis://[user:password@]host:port/db``."""

    def __init__(self, url: str) -> None:
        from fti.config import _mask
        from fti.storage.online.redis import _import_redis

        redis = _import_redis()
        self.url = url
        self._shown = _mask(url)
        self._redis_error: type[Exception] = redis.exceptions.RedisError
        try:
            self._client: Any = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        except ValueError as exc:
            raise BackendError(f"invalid Redis push buffer URL {self._shown!r}: {exc}") from exc
        with self._errors("connect to"):
            self._client.ping()
        self._remove = self._client.register_script(_REMOVE_LUA)
        self._acquire = self._client.register_script(_ACQUIRE_LUA)
        self._release = self._client.register_script(_RELEASE_LUA)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except self._redis_error as exc:
            raise BackendError(
                f"could not {action} the Redis push buffer at {self._shown}: {exc}; check that "
                "redis-server is running and reachable there"
            ) from exc

    def append(self, topic: str, payload: bytes, rows: int) -> str:
        with self._errors("append to"):
            pipe = self._client.pipeline(transaction=True)
            pipe.xadd(_stream(topic), {b"p": payload, b"r": str(int(rows)).encode()})
            pipe.sadd(_TOPICS, topic)
            pipe.hincrby(_ROWS, topic, int(rows))
            entry_id = pipe.execute()[0]
        return str(entry_id.decode())

    def read(self, topic: str, *, limit: int) -> list[BufferEntry]:
        with self._errors("read"):
            found = self._client.xrange(_stream(topic), count=int(limit))
        out = []
        for raw_id, fields in found:
            entry_id = raw_id.decode()
            out.append(BufferEntry(entry_id, bytes(fields[b"p"]), int(fields[b"r"]), _time(entry_id)))
        return out

    def remove(self, topic: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._errors("remove from"):
            for start in range(0, len(ids), 1000):
                self._remove(keys=[_stream(topic), _TOPICS, _ROWS], args=[topic, *ids[start : start + 1000]])

    def topics(self, prefix: str) -> list[str]:
        with self._errors("list the topics of"):
            members = self._client.smembers(_TOPICS)
        return sorted(t for t in (m.decode() for m in members) if t.startswith(prefix))

    def stats(self, topic: str) -> TopicStats:
        with self._errors("read"):
            pipe = self._client.pipeline(transaction=False)
            pipe.xlen(_stream(topic))
            pipe.hget(_ROWS, topic)
            pipe.xrange(_stream(topic), count=1)
            count, rows, first = pipe.execute()
        oldest = _time(first[0][0].decode()) if first else None
        return TopicStats(int(count), int(rows or 0), oldest)

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        with self._errors("take a lease in"):
            return bool(self._acquire(keys=[f"fti:buf:lease:{name}"], args=[holder, max(1, int(ttl * 1000))]))

    def release(self, name: str, holder: str) -> None:
        with self._errors("release a lease in"):
            self._release(keys=[f"fti:buf:lease:{name}"], args=[holder])

    def close(self) -> None:
        self._client.close()
