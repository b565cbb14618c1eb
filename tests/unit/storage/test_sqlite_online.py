"""SQLite-specific behaviour of the online store (the contract covers the rest)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa

from fti.storage.online.sqlite import SqliteOnlineStore


def test_opens_a_file_written_before_per_incarnation_table_names(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE _fti_online_tables (name TEXT PRIMARY KEY, kinds TEXT NOT NULL, "
        "key_columns TEXT NOT NULL, applied_version INTEGER)"
    )
    conn.execute('CREATE TABLE "p__g__v1" ("id" INTEGER, "v" REAL, PRIMARY KEY ("id")) WITHOUT ROWID')
    conn.execute('INSERT INTO "p__g__v1" VALUES (1, 1.5)')
    conn.execute(
        """INSERT INTO _fti_online_tables VALUES ('p__g__v1', '{"id":"int","v":"float"}', '["id"]', 4)"""
    )
    conn.commit()
    conn.close()

    store = SqliteOnlineStore(f"sqlite:///{path}")
    again = SqliteOnlineStore(f"sqlite:///{path}")  # a second opener finds it upgraded
    try:
        assert store.read("p__g__v1", [(1,), (2,)]) == [{"id": 1, "v": 1.5}, None]
        assert store.applied_version("p__g__v1") == 4
        store.write(
            "p__g__v1", pa.table({"id": [2], "v": [2.5]}), key_columns=["id"], event_time=None, version=5
        )
        assert again.read("p__g__v1", [(2,)]) == [{"id": 2, "v": 2.5}]
        store.delete_table("p__g__v1")
        names = {
            r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        assert names == {"_fti_online_tables"}
    finally:
        store.close()
        again.close()


def test_plain_table_names_are_readable_through_a_view(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    store = SqliteOnlineStore(f"sqlite:///{path}")
    raw = sqlite3.connect(path)
    try:
        store.write(
            "p__g__v1", pa.table({"id": [1], "v": [1.5]}), key_columns=["id"], event_time=None, version=0
        )
        store.write(
            "p__g__v1",
            pa.table({"id": [2], "v": [2.5], "w": ["x"]}),
            key_columns=["id"],
            event_time=None,
            version=1,
        )
        assert raw.execute('SELECT * FROM "p__g__v1" ORDER BY id').fetchall() == [
            (1, 1.5, None),
            (2, 2.5, "x"),
        ]
        plan = " ".join(
            str(r) for r in raw.execute('EXPLAIN QUERY PLAN SELECT * FROM "p__g__v1" WHERE id = 1')
        )
        assert "PRIMARY KEY" in plan  # the view costs nothing: a primary-key search on the table
        store.delete_table("p__g__v1")
        assert raw.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')").fetchall() == [
            ("_fti_online_tables",)
        ]
    finally:
        raw.close()
        store.close()
