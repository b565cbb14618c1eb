"""SQLite online store: one table per feature group in a WAL-mode file, one writer, many readers.

Each online table lives in a SQLite table named after it plus a random suffix chosen when it is
created (recorded in ``_fti_online_tables.physical``); a view with the plain name points at it,
for people and tools that query the file directly. Readers cache the layout; when another
process deletes and recreates the table, the cached statement fails with "no such table" and the
layout is reloaded, so the hot read path needs no extra query to stay correct.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from fti.errors import BackendError, SchemaError
from fti.storage.online._arrow import (
    BOOL,
    DATE,
    JSON,
    TS,
    check_keys,
    check_rows,
    column_kind,
    iter_rows,
    restorer,
    storage_keys,
)

if TYPE_CHECKING:
    import pyarrow as pa

from fti.storage.online.base import Key

_SQL_TYPES = {
    "int": "INTEGER",
    "float": "REAL",
    "str": "TEXT",
    "bool": "INTEGER",
    "ts": "INTEGER",
    "date": "INTEGER",
    "bytes": "BLOB",
    "json": "TEXT",
}
_META = "_fti_online_tables"
_GENERAL = object()
_PLAIN_KEYS = {"int": int, "str": str}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_PLAIN = re.compile(r"[a-z0-9_]+")


def _physical(table: str, generation: str) -> str:
    """The SQLite name of one incarnation of an online table.

    SQLite compares table names case-insensitively and reserves ``sqlite_*``: fti's own names
    (lowercase, digits, ``_``) are kept readable; any other name is hex-encoded behind a ``~``.
    The ``~generation`` suffix (no plain name contains ``~``) keeps incarnations apart.
    """
    if _PLAIN.fullmatch(table) and not table.startswith(("_fti", "sqlite_")):
        return f"{table}~{generation}"
    return f"~{table.encode().hex()}~{generation}"


def _in_key_order(rows: pa.Table, key_columns: Sequence[str]) -> pa.Table:
    """``rows`` sorted by key (one row per key, so any order is correct): in key order each row
    lands next to the previous one in the table's B-tree, 3x faster than random order for 100k
    rows. Keys Arrow cannot sort (dictionary-encoded ones) keep their order."""
    if rows.num_rows < 2:
        return rows
    import pyarrow as pa

    try:
        return rows.sort_by([(k, "ascending") for k in key_columns])
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return rows


class _TableInfo:
    """Column layout of one stored table, cached per process."""

    __slots__ = (
        "columns",
        "converters",
        "key_columns",
        "key_index",
        "key_kinds",
        "kinds",
        "physical",
        "projections",
        "select_many",
        "select_one",
    )

    def __init__(self, physical: str, kinds: dict[str, str], key_columns: list[str]) -> None:
        self.physical = physical
        self.kinds = kinds
        self.key_columns = key_columns
        self.key_kinds = [kinds[k] for k in key_columns]
        self.columns = list(kinds)
        # Only bool, timestamp, date and json columns need converting back; skip the rest on the hot path.
        self.converters = [
            (c, restorer(kinds[c])) for c in self.columns if kinds[c] in (BOOL, TS, DATE, JSON)
        ]
        self.key_index = [self.columns.index(k) for k in key_columns]
        # SELECT * (not a column list) so that a row wider than this layout reveals columns
        # another process appended since it was cached.
        where = " AND ".join(f"{_q(k)} = ?" for k in key_columns)
        self.select_one = f"SELECT * FROM {_q(physical)} WHERE {where}"
        self.select_many = f"SELECT * FROM {_q(physical)}"
        self.projections: dict[tuple[str, ...], _Projection] = {}

    def projection(self, columns: tuple[str, ...]) -> _Projection:
        """The statements reading ``columns``, built once (columns the layout lacks read NULL;
        those statements are not kept, so a column another process appends is seen next time)."""
        found = self.projections.get(columns)
        if found is None:
            found = _Projection(self, columns)
            if all(c in self.kinds for c in columns):
                self.projections[columns] = found
        return found


class _Projection:
    """Statements reading some columns of a table: one key selects those columns only, many keys
    select the key columns after them (to match rows to keys)."""

    __slots__ = ("converters", "select_many", "select_one", "width")

    def __init__(self, info: _TableInfo, columns: tuple[str, ...]) -> None:
        self.width = len(columns)
        kinds = info.kinds
        self.converters = [
            (i, restorer(kinds[c])) for i, c in enumerate(columns) if kinds.get(c) in (BOOL, TS, DATE, JSON)
        ]
        listed = ", ".join(_q(c) if c in kinds else "NULL" for c in columns)
        where = " AND ".join(f"{_q(k)} = ?" for k in info.key_columns)
        self.select_one = f"SELECT {listed} FROM {_q(info.physical)} WHERE {where}"
        keys = ", ".join(_q(k) for k in info.key_columns)
        self.select_many = f"SELECT {listed}, {keys} FROM {_q(info.physical)}"


class SqliteOnlineStore:
    """Online store at ``sqlite:///path/online.db``.

    Writes are serialised by a process-level lock and SQLite's own write lock (WAL mode lets
    readers continue during a write). Each thread reads through its own connection.
    """

    in_process = True
    """Reads are local file reads of microseconds (no network): a server may do them on its
    event loop rather than pay a hop to a worker thread."""

    def __init__(self, url: str) -> None:
        if not url.startswith("sqlite:///"):
            raise BackendError(f"not a sqlite online store URL: {url!r} (expected sqlite:///path)")
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._write_lock = threading.Lock()
        self._tables: dict[str, _TableInfo] = {}
        with self._write_lock:
            conn = self._conn()
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_META} (name TEXT PRIMARY KEY, kinds TEXT NOT NULL, "
                "key_columns TEXT NOT NULL, applied_version INTEGER, physical TEXT)"
            )
            if "physical" not in {r[1] for r in conn.execute(f"PRAGMA table_info({_META})")}:
                # Files from before per-incarnation names: their tables are named as the table.
                try:
                    conn.execute(f"ALTER TABLE {_META} ADD COLUMN physical TEXT")
                except sqlite3.OperationalError as exc:  # another process upgraded it just now
                    if "duplicate column" not in str(exc):
                        raise
                conn.execute(f"UPDATE {_META} SET physical = name WHERE physical IS NULL")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, check_same_thread=False, timeout=30.0, isolation_level=None, cached_statements=512
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            self._connections.append(conn)
        return conn

    def _info(self, table: str, *, reload: bool = False) -> _TableInfo | None:
        info = None if reload else self._tables.get(table)
        if info is None:
            self._tables.pop(table, None)
            row = (
                self._conn()
                .execute(f"SELECT kinds, key_columns, physical FROM {_META} WHERE name = ?", (table,))
                .fetchone()
            )
            if row is None:
                return None
            info = _TableInfo(row[2], orjson.loads(row[0]), orjson.loads(row[1]))
            self._tables[table] = info
        return info

    def _ensure_table(
        self, conn: sqlite3.Connection, table: str, schema: pa.Schema, key_columns: Sequence[str]
    ) -> _TableInfo:
        kinds = {field.name: column_kind(field.type) for field in schema}
        row = conn.execute(
            f"SELECT kinds, key_columns, physical FROM {_META} WHERE name = ?", (table,)
        ).fetchone()
        if row is not None and orjson.loads(row[1]) != list(key_columns):
            raise SchemaError(
                f"online table {table!r} is keyed by {orjson.loads(row[1])}, not {list(key_columns)}; "
                "delete the table first to change its key"
            )
        if row is None:
            physical = _physical(table, os.urandom(4).hex())
            cols = ", ".join(f"{_q(c)} {_SQL_TYPES[k]}" for c, k in kinds.items())
            pk = ", ".join(_q(k) for k in key_columns)
            conn.execute(f"CREATE TABLE {_q(physical)} ({cols}, PRIMARY KEY ({pk})) WITHOUT ROWID")
            if physical.startswith(table + "~"):  # a plain name: readable through a view
                conn.execute(f"CREATE VIEW {_q(table)} AS SELECT * FROM {_q(physical)}")
            stored = kinds
        else:
            physical = row[2]
            stored = orjson.loads(row[0])
            for name, kind in kinds.items():
                if name not in stored:  # a feature appended to the group
                    conn.execute(f"ALTER TABLE {_q(physical)} ADD COLUMN {_q(name)} {_SQL_TYPES[kind]}")
                    stored[name] = kind
        conn.execute(
            f"INSERT INTO {_META} (name, kinds, key_columns, physical) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET kinds = excluded.kinds",
            (table, orjson.dumps(stored).decode(), orjson.dumps(list(key_columns)).decode(), physical),
        )
        info = _TableInfo(physical, stored, list(key_columns))
        self._tables[table] = info
        return info

    def write(
        self,
        table: str,
        rows: pa.Table,
        *,
        key_columns: Sequence[str],
        event_time: str | None,
        version: int | None,
    ) -> int:
        check_rows(rows, key_columns, event_time, version)
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                info = self._ensure_table(conn, table, rows.schema, key_columns)
                columns = rows.column_names
                names = ", ".join(_q(c) for c in columns)
                marks = ", ".join("?" for _ in columns)
                # A write replaces the whole row: stored columns absent from ``rows`` become NULL.
                updates = ", ".join(
                    f"{_q(c)} = excluded.{_q(c)}" if c in columns else f"{_q(c)} = NULL"
                    for c in info.columns
                    if c not in key_columns
                )
                conflict = ", ".join(_q(k) for k in key_columns)
                sql = (
                    f"INSERT INTO {_q(info.physical)} ({names}) VALUES ({marks}) ON CONFLICT ({conflict}) DO "
                )
                if not updates:
                    sql += "NOTHING"
                else:
                    sql += f"UPDATE SET {updates}"
                    if event_time is not None:
                        # Out-of-order safety: an older event never replaces a newer one.
                        sql += f" WHERE excluded.{_q(event_time)} >= {_q(info.physical)}.{_q(event_time)}"
                if rows.num_rows:
                    conn.executemany(sql, iter_rows(_in_key_order(rows, key_columns), info.kinds))
                if version is not None:
                    conn.execute(f"UPDATE {_META} SET applied_version = ? WHERE name = ?", (version, table))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._tables.pop(table, None)  # the cached layout may name columns the rollback removed
                raise
        return int(rows.num_rows)

    def read(self, table: str, keys: Sequence[Key]) -> list[dict[str, Any] | None]:
        found = self._fetch(table, keys, None)
        if found is None:
            return [None] * len(keys)
        info, rows = found
        # A fresh dict per entry: a key requested twice must not hand out one shared dict.
        columns, converters = info.columns, info.converters
        out: list[dict[str, Any] | None] = []
        for row in rows:
            if row is None:
                out.append(None)
                continue
            record = dict(zip(columns, row, strict=True))
            for name, convert in converters:
                value = record[name]
                if value is not None:
                    record[name] = convert(value)
            out.append(record)
        return out

    def read_columns(
        self, table: str, keys: Sequence[Key], columns: Sequence[str]
    ) -> list[tuple[Any, ...] | None]:
        wanted = tuple(columns)
        if (
            type(keys) in (list, tuple) and len(keys) == 1
        ):  # one entity's vector: skip the general path's steps when the key is plain
            row = self._read_one(table, keys[0], wanted)
            if row is not _GENERAL:
                return [row]  # type: ignore[list-item]
        if not wanted:  # whether each row exists
            return [None if row is None else () for row in self.read(table, keys)]
        found = self._fetch(table, keys, wanted)
        if found is None:
            return [None] * len(keys)
        info, rows = found
        converters = info.projection(wanted).converters
        if not converters:
            return rows
        out: list[tuple[Any, ...] | None] = []
        for row in rows:
            if row is not None:
                values = list(row)
                for i, convert in converters:
                    if values[i] is not None:
                        values[i] = convert(values[i])
                row = tuple(values)
            out.append(row)
        return out

    def _read_one(self, table: str, key: Key, columns: tuple[str, ...]) -> tuple[Any, ...] | object | None:
        """The row of one plain key (one int or str column) through a cached statement, or
        ``_GENERAL`` when the general path must answer (unknown layout, conversions, other keys)."""
        info = self._tables.get(table)
        projection = None if info is None else info.projections.get(columns)
        if projection is None or projection.converters or type(key) is not tuple or len(key) != 1:
            return _GENERAL
        if _PLAIN_KEYS.get(info.key_kinds[0]) is not type(key[0]):  # type: ignore[union-attr]
            return _GENERAL
        try:
            found = self._conn().execute(projection.select_one, key).fetchall()
        except sqlite3.OperationalError:  # e.g. recreated by another process: the general path reloads
            return _GENERAL
        return found[0] if found else None

    def _fetch(
        self, table: str, keys: Sequence[Key], columns: tuple[str, ...] | None
    ) -> tuple[_TableInfo, list[tuple[Any, ...] | None]] | None:
        """The stored tuple of each key (all columns, or ``columns`` when they are all stored), as
        stored, with the layout it was read under; None when the table does not exist."""
        check_keys(keys)
        info = self._info(table)
        if info is None:
            return None
        if (
            columns is not None
            and columns not in info.projections
            and any(c not in info.kinds for c in columns)
        ):
            # Another process may have appended the column since the layout was cached.
            info = self._info(table, reload=True)
            if info is None:
                return None
        stored = storage_keys(keys, info.key_kinds)
        if None in stored:
            # A key of another type than the cached key columns: check the cache is current
            # (another process may have recreated the table with other key types) before answering.
            info = self._info(table, reload=True)
            if info is None:
                return None
            stored = storage_keys(keys, info.key_kinds)
        try:
            return self._select(table, info, stored, columns)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            # Another process deleted (and maybe recreated) the table since we cached it.
            info = self._info(table, reload=True)
            if info is None:
                return None
            return self._select(table, info, storage_keys(keys, info.key_kinds), columns)

    def _select(
        self,
        table: str,
        info: _TableInfo,
        stored: list[tuple[Any, ...] | None],
        columns: tuple[str, ...] | None,
    ) -> tuple[_TableInfo, list[tuple[Any, ...] | None]]:
        conn = self._conn()
        projection = None if columns is None else info.projection(columns)
        if len(stored) == 1:
            if stored[0] is None:
                return info, [None]
            sql = info.select_one if projection is None else projection.select_one
            found = conn.execute(sql, stored[0]).fetchall()
            if found and projection is None:
                info = self._current(table, info, found[0])
            return info, [found[0] if found else None]
        nkeys = len(info.key_columns)
        by_key: dict[Key, tuple[Any, ...]] = {}
        unique = [k for k in dict.fromkeys(stored) if k is not None]
        head = info.select_many if projection is None else projection.select_many
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            if nkeys == 1:
                marks = ", ".join("?" for _ in chunk)
                sql = f"{head} WHERE {_q(info.key_columns[0])} IN ({marks})"
                params: list[Any] = [k[0] for k in chunk]
            else:
                tuple_marks = "(" + ", ".join("?" for _ in range(nkeys)) + ")"
                cols = ", ".join(_q(k) for k in info.key_columns)
                sql = f"{head} WHERE ({cols}) IN (VALUES {', '.join(tuple_marks for _ in chunk)})"
                params = [v for k in chunk for v in k]
            rows = conn.execute(sql, params)
            if projection is not None:  # the key columns follow the wanted ones
                width = projection.width
                if nkeys == 1:
                    for row in rows:
                        by_key[(row[width],)] = row[:width]
                else:
                    for row in rows:
                        by_key[row[width:]] = row[:width]
            elif nkeys == 1:
                index = info.key_index[0]
                for row in rows:
                    by_key[(row[index],)] = row
            else:
                key_index = info.key_index
                for row in rows:
                    by_key[tuple([row[i] for i in key_index])] = row
        if by_key and projection is None:
            info = self._current(table, info, next(iter(by_key.values())))
        return info, [None if k is None else by_key.get(k) for k in stored]

    def _current(self, table: str, info: _TableInfo, row: tuple[Any, ...]) -> _TableInfo:
        """``info``, reloaded when ``row`` shows columns appended by another connection."""
        if len(row) == len(info.columns):
            return info
        return self._info(table, reload=True) or info

    def applied_version(self, table: str) -> int | None:
        row = self._conn().execute(f"SELECT applied_version FROM {_META} WHERE name = ?", (table,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def delete_table(self, table: str) -> None:
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(f"SELECT physical FROM {_META} WHERE name = ?", (table,)).fetchone()
                if row is not None:
                    if row[0] != table:
                        conn.execute(f"DROP VIEW IF EXISTS {_q(table)}")
                    conn.execute(f"DROP TABLE IF EXISTS {_q(row[0])}")
                    conn.execute(f"DELETE FROM {_META} WHERE name = ?", (table,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._tables.pop(table, None)

    def close(self) -> None:
        # Every thread's connection, not only the caller's: threads may be gone by now.
        while self._connections:
            self._connections.pop().close()
        self._local = threading.local()
