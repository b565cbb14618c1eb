"""SQLite online store: one table per feature group in a WAL-mode file, one writer, many readers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from fti.errors import BackendError
from fti.storage.online._arrow import BOOL, JSON, TS, column_kind, iter_rows, restore

if TYPE_CHECKING:
    import pyarrow as pa

from fti.storage.online.base import Key

_SQL_TYPES = {
    "int": "INTEGER",
    "float": "REAL",
    "str": "TEXT",
    "bool": "INTEGER",
    "ts": "INTEGER",
    "bytes": "BLOB",
    "json": "TEXT",
}
_META = "_fti_online_tables"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _TableInfo:
    """Column layout of one stored table, cached per process."""

    __slots__ = ("columns", "converters", "key_columns", "kinds", "select_many", "select_one")

    def __init__(self, name: str, kinds: dict[str, str], key_columns: list[str]) -> None:
        self.kinds = kinds
        self.key_columns = key_columns
        self.columns = list(kinds)
        # Only bool, timestamp and json columns need converting back; skip the rest on the hot path.
        self.converters = [
            (i, c, kinds[c]) for i, c in enumerate(self.columns) if kinds[c] in (BOOL, TS, JSON)
        ]
        cols = ", ".join(_q(c) for c in self.columns)
        where = " AND ".join(f"{_q(k)} = ?" for k in key_columns)
        self.select_one = f"SELECT {cols} FROM {_q(name)} WHERE {where}"
        self.select_many = f"SELECT {cols} FROM {_q(name)}"


class SqliteOnlineStore:
    """Online store at ``sqlite:///path/online.db``.

    Writes are serialised by a process-level lock and SQLite's own write lock (WAL mode lets
    readers continue during a write). Each thread reads through its own connection.
    """

    def __init__(self, url: str) -> None:
        if not url.startswith("sqlite:///"):
            raise BackendError(f"not a sqlite online store URL: {url!r} (expected sqlite:///path)")
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._tables: dict[str, _TableInfo] = {}
        with self._conn() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_META} (name TEXT PRIMARY KEY, kinds TEXT NOT NULL, "
                "key_columns TEXT NOT NULL, applied_version INTEGER)"
            )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, check_same_thread=False, timeout=30.0, isolation_level=None, cached_statements=512
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _info(self, table: str) -> _TableInfo | None:
        info = self._tables.get(table)
        if info is None:
            row = (
                self._conn()
                .execute(f"SELECT kinds, key_columns FROM {_META} WHERE name = ?", (table,))
                .fetchone()
            )
            if row is None:
                return None
            info = _TableInfo(table, orjson.loads(row[0]), orjson.loads(row[1]))
            self._tables[table] = info
        return info

    def _ensure_table(
        self, conn: sqlite3.Connection, table: str, schema: pa.Schema, key_columns: Sequence[str]
    ) -> _TableInfo:
        kinds = {field.name: column_kind(field.type) for field in schema}
        row = conn.execute(f"SELECT kinds FROM {_META} WHERE name = ?", (table,)).fetchone()
        if row is None:
            cols = ", ".join(f"{_q(c)} {_SQL_TYPES[k]}" for c, k in kinds.items())
            pk = ", ".join(_q(k) for k in key_columns)
            conn.execute(f"CREATE TABLE {_q(table)} ({cols}, PRIMARY KEY ({pk})) WITHOUT ROWID")
            stored = kinds
        else:
            stored = orjson.loads(row[0])
            for name, kind in kinds.items():
                if name not in stored:  # a feature appended to the group
                    conn.execute(f"ALTER TABLE {_q(table)} ADD COLUMN {_q(name)} {_SQL_TYPES[kind]}")
                    stored[name] = kind
        conn.execute(
            f"INSERT INTO {_META} (name, kinds, key_columns) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET kinds = excluded.kinds",
            (table, orjson.dumps(stored).decode(), orjson.dumps(list(key_columns)).decode()),
        )
        info = _TableInfo(table, stored, list(key_columns))
        self._tables[table] = info
        return info

    def write(
        self,
        table: str,
        rows: pa.Table,
        *,
        key_columns: Sequence[str],
        event_time: str | None,
        version: int,
    ) -> int:
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                info = self._ensure_table(conn, table, rows.schema, key_columns)
                columns = rows.column_names
                names = ", ".join(_q(c) for c in columns)
                marks = ", ".join("?" for _ in columns)
                updates = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in columns if c not in key_columns)
                conflict = ", ".join(_q(k) for k in key_columns)
                sql = f"INSERT INTO {_q(table)} ({names}) VALUES ({marks}) ON CONFLICT ({conflict}) DO "
                if not updates:
                    sql += "NOTHING"
                else:
                    sql += f"UPDATE SET {updates}"
                    if event_time is not None:
                        # Out-of-order safety: an older event never replaces a newer one.
                        sql += f" WHERE excluded.{_q(event_time)} >= {_q(table)}.{_q(event_time)}"
                if rows.num_rows:
                    conn.executemany(sql, iter_rows(rows, info.kinds))
                conn.execute(f"UPDATE {_META} SET applied_version = ? WHERE name = ?", (version, table))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return int(rows.num_rows)

    def read(self, table: str, keys: Sequence[Key]) -> list[dict[str, Any] | None]:
        info = self._info(table)
        if info is None:
            return [None] * len(keys)
        conn = self._conn()
        if len(keys) == 1:
            found = conn.execute(info.select_one, keys[0]).fetchall()
            return [self._to_dict(info, found[0]) if found else None]
        nkeys = len(info.key_columns)
        by_key: dict[Key, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            if nkeys == 1:
                marks = ", ".join("?" for _ in chunk)
                sql = f"{info.select_many} WHERE {_q(info.key_columns[0])} IN ({marks})"
                params: list[Any] = [k[0] for k in chunk]
            else:
                tuple_marks = "(" + ", ".join("?" for _ in range(nkeys)) + ")"
                cols = ", ".join(_q(k) for k in info.key_columns)
                sql = f"{info.select_many} WHERE ({cols}) IN (VALUES {', '.join(tuple_marks for _ in chunk)})"
                params = [v for k in chunk for v in k]
            key_idx = [info.columns.index(k) for k in info.key_columns]
            for row in conn.execute(sql, params):
                by_key[tuple(row[i] for i in key_idx)] = self._to_dict(info, row)
        return [by_key.get(tuple(k)) for k in keys]

    @staticmethod
    def _to_dict(info: _TableInfo, row: tuple[Any, ...]) -> dict[str, Any]:
        record = dict(zip(info.columns, row, strict=True))
        for _, name, kind in info.converters:
            value = record[name]
            if value is not None:
                record[name] = restore(value, kind)
        return record

    def applied_version(self, table: str) -> int | None:
        row = self._conn().execute(f"SELECT applied_version FROM {_META} WHERE name = ?", (table,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def delete_table(self, table: str) -> None:
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"DROP TABLE IF EXISTS {_q(table)}")
            conn.execute(f"DELETE FROM {_META} WHERE name = ?", (table,))
            conn.execute("COMMIT")
            self._tables.pop(table, None)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
