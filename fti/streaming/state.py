"""The checkpoint of a stream pipeline: its accepted events, watermark, counters and dead letters.

A SQLite file per pipeline under ``$FTI_HOME/streams/<project>/<pipeline>.db`` (WAL, one
transaction per batch). The processor writes a batch's outputs first, then this checkpoint,
then acknowledges the batch's messages: a crash before the checkpoint redelivers messages whose
rows are recomputed identically, a crash after it redelivers messages that are recognised by
their ids and skipped. The file is locked (``flock``) while a processor runs, so two processes
never run one pipeline at once; the kernel drops the lock when its process dies.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from fti.errors import ConflictError
from fti.streaming.aggregator import Event


class StreamState:
    """The checkpoint file of one stream pipeline."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock)
            raise ConflictError(
                f"another process runs this stream pipeline already (it holds {path}.lock); stop it "
                "first (its scheduler, or the process running it)"
            ) from None
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(
            "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, key TEXT NOT NULL, t INTEGER NOT NULL,"
            " vals TEXT NOT NULL);"
            "CREATE INDEX IF NOT EXISTS ix_events_t ON events (t);"
            "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS dead (id TEXT PRIMARY KEY, reason TEXT NOT NULL, fields TEXT NOT NULL,"
            " at REAL NOT NULL);"
        )
        self.reset = False
        """True when the stored state belonged to another declaration and was discarded."""
        stored = self._meta("fingerprint")
        if stored is not None and stored != fingerprint:
            self._conn.executescript("BEGIN; DELETE FROM events; DELETE FROM meta; COMMIT;")
            self.reset = True
        self._put_meta({"fingerprint": fingerprint})

    def _meta(self, name: str) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def _put_meta(self, values: dict[str, Any]) -> None:
        self._conn.executemany(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [(k, orjson.dumps(v)) for k, v in values.items()],
        )

    def load(self) -> tuple[list[Event], int | None, dict[str, int]]:
        """The accepted events (by time), the watermark and the counters."""
        events = [
            Event(i, tuple(orjson.loads(k)), int(t), tuple(orjson.loads(v)))
            for i, k, t, v in self._conn.execute("SELECT id, key, t, vals FROM events ORDER BY t, id")
        ]
        counters = self._meta("counters") or {}
        return events, self._meta("watermark"), {k: int(v) for k, v in counters.items()}

    def commit(
        self,
        accepted: Iterable[Event],
        *,
        evict_before: int | None,
        watermark: int | None,
        counters: dict[str, int],
        dead: Iterable[tuple[str, str, dict[str, str]]] = (),
    ) -> None:
        """Store one batch's effect in one transaction."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR IGNORE INTO events (id, key, t, vals) VALUES (?, ?, ?, ?)",
                [(e.id, orjson.dumps(list(e.key)), e.t, orjson.dumps(list(e.values))) for e in accepted],
            )
            if evict_before is not None:
                conn.execute("DELETE FROM events WHERE t < ?", (evict_before,))
            conn.executemany(
                "INSERT OR IGNORE INTO dead (id, reason, fields, at) VALUES (?, ?, ?, strftime('%s', 'now'))",
                [(i, reason, orjson.dumps(fields)) for i, reason, fields in dead],
            )
            self._put_meta({"watermark": watermark, "counters": counters})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def dead_letters(self, limit: int = 20) -> tuple[int, list[dict[str, Any]]]:
        """How many messages were dead-lettered, and the latest ``limit`` of them."""
        count = int(self._conn.execute("SELECT count(*) FROM dead").fetchone()[0])
        rows = self._conn.execute(
            "SELECT id, reason, fields FROM dead ORDER BY at DESC, id DESC LIMIT ?", (limit,)
        )
        return count, [{"id": i, "reason": r, "fields": orjson.loads(f)} for i, r, f in rows]

    def close(self) -> None:
        self._conn.close()
        os.close(self._lock)


def read_dead_letters(path: Path, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` dead letters of the checkpoint at ``path``, read without locking it
    (empty when there is none on this machine)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, reason, fields FROM dead ORDER BY at DESC, id DESC LIMIT ?", (limit,))
        return [{"id": i, "reason": r, "fields": orjson.loads(f)} for i, r, f in rows]
    except sqlite3.Error:
        return []
    finally:
        conn.close()
