"""SQLite push buffer: one WAL-mode file of entries beside the embedded online store.

Entries are rows of one table with an ``AUTOINCREMENT`` id, so an id is never reused and a
replayed ``remove`` can never delete a later entry. Each ``append`` is its own transaction; in
WAL mode with ``synchronous=NORMAL`` a committed entry survives the writer's process being
killed (as Redis with its default persistence, an operating-system crash may lose the last
second). Leases are ``flock`` locks on a file beside the database: the kernel releases them the
moment their process dies, so a restarted committer takes over at once.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from fti.errors import BackendError
from fti.storage.buffer.base import BufferEntry, TopicStats


class SqlitePushBuffer:
    """Push buffer at ``sqlite:///path/push_buffer.db``."""

    def __init__(self, url: str) -> None:
        if not url.startswith("sqlite:///"):
            raise BackendError(f"not a sqlite push buffer URL: {url!r} (expected sqlite:///path)")
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, int]] = {}  # name -> (holder, locked file descriptor)
        conn = self._conn()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "payload BLOB NOT NULL, rows INTEGER NOT NULL, appended_at REAL NOT NULL)"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS ix_entries_topic ON entries (topic, id)")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise BackendError(f"cannot open the push buffer {str(self.path)!r}: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def append(self, topic: str, payload: bytes, rows: int) -> str:
        cursor = self._conn().execute(
            "INSERT INTO entries (topic, payload, rows, appended_at) VALUES (?, ?, ?, ?)",
            (topic, payload, int(rows), time.time()),
        )
        return str(cursor.lastrowid)

    def read(self, topic: str, *, limit: int) -> list[BufferEntry]:
        rows = self._conn().execute(
            "SELECT id, payload, rows, appended_at FROM entries WHERE topic = ? ORDER BY id LIMIT ?",
            (topic, int(limit)),
        )
        return [BufferEntry(str(i), bytes(p), int(n), datetime.fromtimestamp(t, UTC)) for i, p, n, t in rows]

    def remove(self, topic: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        conn = self._conn()
        for start in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[start : start + 500]]
            marks = ", ".join("?" for _ in chunk)
            conn.execute(f"DELETE FROM entries WHERE topic = ? AND id IN ({marks})", (topic, *chunk))

    def topics(self, prefix: str) -> list[str]:
        # range scan on the index: topics starting with prefix sort between prefix and prefix+U+10FFFF
        rows = self._conn().execute(
            "SELECT DISTINCT topic FROM entries WHERE topic >= ? AND topic < ? ORDER BY topic",
            (prefix, prefix + "\U0010ffff"),
        )
        return [r[0] for r in rows]

    def stats(self, topic: str) -> TopicStats:
        count, rows, oldest = (
            self._conn()
            .execute(
                "SELECT count(*), coalesce(sum(rows), 0), min(appended_at) FROM entries WHERE topic = ?",
                (topic,),
            )
            .fetchone()
        )
        return TopicStats(
            int(count), int(rows), None if oldest is None else datetime.fromtimestamp(oldest, UTC)
        )

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        with self._lock:
            held = self._leases.get(name)
            if held is not None:
                return held[0] == holder
            fd = os.open(f"{self.path}.{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._leases[name] = (holder, fd)
            return True

    def release(self, name: str, holder: str) -> None:
        with self._lock:
            held = self._leases.get(name)
            if held is None or held[0] != holder:
                return
            del self._leases[name]
            os.close(held[1])  # closing the descriptor drops the flock

    def close(self) -> None:
        with self._lock:
            for _, fd in self._leases.values():
                os.close(fd)
            self._leases.clear()
            while self._connections:
                self._connections.pop().close()
        self._local = threading.local()
