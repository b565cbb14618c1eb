"""The push-buffer contract: every invariant of ``fti.storage.buffer.base.PushBuffer`` as tests.

Subclass :class:`PushBufferContract` and provide a ``push_buffer`` fixture yielding a fresh,
empty buffer (closed afterwards). ``type(buffer)(buffer.url)`` opens a second connection, as
another process would.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from fti.storage.buffer.base import PushBuffer, entry_order


class PushBufferContract:
    """Tests every push buffer passes."""

    def test_entries_come_back_in_append_order(self, push_buffer: PushBuffer) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        ids = [push_buffer.append("t", f"p{i}".encode(), i + 1) for i in range(5)]
        assert sorted(ids, key=entry_order) == ids and len(set(ids)) == 5
        entries = push_buffer.read("t", limit=10)
        assert [e.id for e in entries] == ids
        assert [e.payload for e in entries] == [f"p{i}".encode() for i in range(5)]
        assert [e.rows for e in entries] == [1, 2, 3, 4, 5]
        assert all(before <= e.appended_at <= datetime.now(UTC) + timedelta(seconds=1) for e in entries)
        assert [e.id for e in push_buffer.read("t", limit=2)] == ids[:2]

    def test_binary_payloads_round_trip(self, push_buffer: PushBuffer) -> None:
        payload = bytes(range(256)) * 1000
        push_buffer.append("t", payload, 1)
        assert push_buffer.read("t", limit=1)[0].payload == payload

    def test_remove_is_idempotent_and_stats_follow(self, push_buffer: PushBuffer) -> None:
        assert push_buffer.stats("t").entries == 0 and push_buffer.stats("t").oldest is None
        ids = [push_buffer.append("t", b"x", 10) for _ in range(3)]
        stats = push_buffer.stats("t")
        assert (stats.entries, stats.rows) == (3, 30) and stats.oldest is not None
        push_buffer.remove("t", ids[:2])
        push_buffer.remove("t", ids[:2])  # a replayed commit removes again: no-op
        push_buffer.remove("t", [])
        assert [e.id for e in push_buffer.read("t", limit=10)] == ids[2:]
        assert (push_buffer.stats("t").entries, push_buffer.stats("t").rows) == (1, 10)
        push_buffer.remove("t", ids[2:])
        assert push_buffer.read("t", limit=10) == [] and push_buffer.topics("") == []
        # ids are never reused: a later entry is not hit by a replayed removal of an old id
        later = push_buffer.append("t", b"y", 1)
        assert later not in ids
        push_buffer.remove("t", ids)
        assert [e.id for e in push_buffer.read("t", limit=10)] == [later]

    def test_topics_are_isolated_and_listed_by_prefix(self, push_buffer: PushBuffer) -> None:
        push_buffer.append("p1__a__v1", b"a", 1)
        b = push_buffer.append("p1__b__v1", b"b", 2)
        push_buffer.append("p2__a__v1", b"c", 3)
        assert push_buffer.topics("p1__") == ["p1__a__v1", "p1__b__v1"]
        assert push_buffer.topics("") == ["p1__a__v1", "p1__b__v1", "p2__a__v1"]
        push_buffer.remove("p1__b__v1", [b])  # ids are per topic: the others keep theirs
        assert push_buffer.topics("p1__") == ["p1__a__v1"]
        assert [e.payload for e in push_buffer.read("p1__a__v1", limit=5)] == [b"a"]
        assert push_buffer.stats("p2__a__v1").rows == 3

    def test_another_connection_sees_entries(self, push_buffer: PushBuffer) -> None:
        other: PushBuffer = type(push_buffer)(push_buffer.url)  # type: ignore[call-arg]
        try:
            first = other.append("t", b"from-other", 4)
            assert [e.id for e in push_buffer.read("t", limit=5)] == [first]
            push_buffer.remove("t", [first])
            assert other.read("t", limit=5) == []
        finally:
            other.close()

    def test_concurrent_appends_lose_nothing(self, push_buffer: PushBuffer) -> None:
        def writer(n: int) -> None:
            for i in range(50):
                push_buffer.append("t", f"{n}-{i}".encode(), 1)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        entries = push_buffer.read("t", limit=1000)
        assert sorted(e.payload for e in entries) == sorted(
            f"{n}-{i}".encode() for n in range(4) for i in range(50)
        )
        for n in range(4):  # each writer's entries stay in its order
            mine = [e.payload for e in entries if e.payload.startswith(f"{n}-".encode())]
            assert mine == [f"{n}-{i}".encode() for i in range(50)]

    def test_a_lease_has_one_holder(self, push_buffer: PushBuffer) -> None:
        other: PushBuffer = type(push_buffer)(push_buffer.url)  # type: ignore[call-arg]
        try:
            assert push_buffer.acquire("commit", "a", 30.0)
            assert push_buffer.acquire("commit", "a", 30.0)  # renewal
            assert not other.acquire("commit", "b", 30.0)
            assert other.acquire("another", "b", 30.0)  # leases are per name
            push_buffer.release("commit", "b")  # not the holder: no effect
            assert not other.acquire("commit", "b", 30.0)
            push_buffer.release("commit", "a")
            assert other.acquire("commit", "b", 30.0)
            assert not push_buffer.acquire("commit", "a", 30.0)
            other.release("commit", "b")
        finally:
            other.close()

    def test_a_lease_that_is_not_renewed_expires_or_dies_with_its_holder(
        self, push_buffer: PushBuffer
    ) -> None:
        other: PushBuffer = type(push_buffer)(push_buffer.url)  # type: ignore[call-arg]
        assert other.acquire("commit", "b", 0.2)
        other.close()  # a killed holder: SQLite drops the lock at once, Redis after the ttl
        deadline = time.monotonic() + 5
        while not push_buffer.acquire("commit", "a", 0.2):
            assert time.monotonic() < deadline, "the lease of a holder that went away never expired"
            time.sleep(0.05)


__all__ = ["PushBufferContract"]
