"""The push-buffer Protocol: durable append-only topics of opaque entries, and a committer lease.

A *topic* is a feature group's offline table name; an *entry* is one push (the rows as Arrow IPC
bytes, written by :mod:`fti.streaming.push`). Entries stay until the committer has written them
to the offline store and removes them, so a crash anywhere in between replays them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class BufferEntry:
    """One appended entry."""

    id: str
    """Its position in its topic (ids are per topic): later entries sort after earlier ones (see
    :func:`entry_order`)."""
    payload: bytes
    rows: int
    appended_at: datetime
    """When it was appended (tz-aware UTC)."""


@dataclass(frozen=True)
class TopicStats:
    """What a topic holds right now."""

    entries: int
    rows: int
    oldest: datetime | None
    """When the oldest entry was appended (None: the topic is empty)."""


class PushBuffer(Protocol):
    """Durable topics of entries (SQLite WAL file or Redis Streams).

    Invariants every implementation keeps (``fti.testing.contracts.buffer`` checks them):

    - ``append`` returns only once the entry is stored (it survives the writer's process being
      killed); entries of a topic come back from ``read`` in append order, also across writers.
    - ``remove`` of ids that are gone already is a no-op, so a replayed commit may remove again.
    - Topics are isolated; ``topics`` lists exactly the non-empty ones with the prefix.
    - ``acquire`` is a lease per name: while one holder has it, every other holder is refused
      until the holder releases it or stops renewing it for ``ttl`` seconds (a process that is
      killed loses it within ``ttl``, sooner where the backend notices the death).
    """

    url: str

    def append(self, topic: str, payload: bytes, rows: int) -> str:
        """Store one entry of ``rows`` rows; returns its id."""
        ...

    def read(self, topic: str, *, limit: int) -> list[BufferEntry]:
        """The oldest ``limit`` entries of ``topic`` (fewer when it holds fewer)."""
        ...

    def remove(self, topic: str, ids: Sequence[str]) -> None:
        """Delete entries by id (after they were committed)."""
        ...

    def topics(self, prefix: str) -> list[str]:
        """The non-empty topics whose name starts with ``prefix``, sorted."""
        ...

    def stats(self, topic: str) -> TopicStats:
        """Entry and row counts and the age of the oldest entry of ``topic``."""
        ...

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``holder``; False while another holder has it."""
        ...

    def release(self, name: str, holder: str) -> None:
        """Give up the lease if ``holder`` has it."""
        ...

    def close(self) -> None:
        """Release connections (a SQLite buffer also drops its leases; a Redis lease expires)."""
        ...


def entry_order(entry_id: str) -> tuple[int, ...]:
    """A sort key of entry ids (``"12"`` or Redis's ``"1700000000000-3"``)."""
    return tuple(int(part) for part in entry_id.split("-"))
