"""SQL sources on a real PostgreSQL server (ADBC) and SQLite (SQLAlchemy)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

import fti
from fti.errors import BackendError, NotFoundError, ValidationError
from fti.sources import SQL

from .conftest import PASSWORD, Database

SETUP = (
    "CREATE TABLE tx (id bigint, ts timestamptz, amount numeric(10, 2), category text, day date, score float8)",
    "INSERT INTO tx SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', g * 1.25, "
    "CASE WHEN g % 2 = 0 THEN 'food' ELSE NULL END, date '2024-01-01' + g, g / 4.0 FROM generate_series(1, 10) g",
)


def test_read_types_parameters_and_chunks(database: Database, sqlite_project: fti.Project) -> None:
    database.execute(*SETUP)
    pg = SQL(database.url, project=sqlite_project)
    table = pg.read(
        "SELECT * FROM tx WHERE ts >= :since ORDER BY id", since=datetime(2024, 1, 1, 0, 8, tzinfo=UTC)
    )
    assert table.column("id").to_pylist() == [8, 9, 10]
    assert table.schema.field("ts").type == pa.timestamp("us", "UTC")
    assert table.schema.field("amount").type == pa.decimal128(10, 2)
    assert table.column("amount").to_pylist() == [Decimal("10.00"), Decimal("11.25"), Decimal("12.50")]
    assert table.column("category").to_pylist() == ["food", None, "food"]
    assert table.column("day").to_pylist()[0] == date(2024, 1, 9)
    assert not table.schema.field("id").metadata  # the driver's field metadata is dropped
    sizes = [b.num_rows for b in pg.batches("SELECT * FROM tx ORDER BY id", chunk_rows=4)]
    assert sizes == [4, 4, 2]
    empty = pg.read("SELECT * FROM tx WHERE false")
    assert empty.num_rows == 0 and empty.schema.names == ["id", "ts", "amount", "category", "day", "score"]


def test_adbc_and_sqlalchemy_give_the_same_rows(database: Database, sqlite_project: fti.Project) -> None:
    database.execute(*SETUP)
    query = "SELECT id, ts, amount, category, score FROM tx ORDER BY id"
    fast = SQL(database.url, project=sqlite_project).read(query)
    plain = SQL(database.url, project=sqlite_project, driver="sqlalchemy").read(query)
    assert fast.to_pylist() == plain.to_pylist()


def test_password_comes_from_the_secret(database: Database, sqlite_project: fti.Project) -> None:
    database.execute(*SETUP, "GRANT SELECT ON tx TO analytics")
    with pytest.raises(BackendError, match="cannot connect") as err:
        SQL(database.protected_url, project=sqlite_project).read("SELECT 1")
    sqlite_project.secrets.set("plain", PASSWORD)
    sqlite_project.secrets.set("fields", json.dumps({"user": "analytics", "password": PASSWORD}))
    assert SQL(database.protected_url, secret="plain", project=sqlite_project).read(
        "SELECT count(*) AS n FROM tx"
    )["n"].to_pylist() == [10]
    no_user = database.protected_url.replace("analytics@", "")
    for driver in ("auto", "sqlalchemy"):
        source = SQL(no_user, secret="fields", project=sqlite_project, driver=driver)
        assert source.read("SELECT current_user AS u")["u"].to_pylist() == ["analytics"]
        assert PASSWORD not in repr(source)
    # a wrong password: the error names the problem, never the password
    sqlite_project.secrets.set("wrong", PASSWORD + "x")
    for driver in ("auto", "sqlalchemy"):
        with pytest.raises(BackendError, match="password authentication failed") as err:
            SQL(database.protected_url, secret="wrong", project=sqlite_project, driver=driver).read(
                "SELECT 1"
            )
        assert PASSWORD not in str(err.value)


def test_secret_errors(database: Database, sqlite_project: fti.Project) -> None:
    with pytest.raises(NotFoundError, match="secret 'missing' does not exist"):
        SQL(database.protected_url, secret="missing", project=sqlite_project).read("SELECT 1")
    sqlite_project.secrets.set("odd", json.dumps({"password": PASSWORD, "pasword": PASSWORD}))
    with pytest.raises(ValidationError, match=r"unknown field.*pasword") as err:
        SQL(database.protected_url, secret="odd", project=sqlite_project).read("SELECT 1")
    assert PASSWORD not in str(err.value)
    with pytest.raises(ValidationError, match="needs a project"):
        SQL(database.protected_url, secret="odd").read("SELECT 1")


def test_bad_input(database: Database, sqlite_project: fti.Project) -> None:
    database.execute(*SETUP)
    pg = SQL(database.url, project=sqlite_project)
    with pytest.raises(ValidationError, match='column "nope" does not exist'):
        pg.read("SELECT nope FROM tx")
    with pytest.raises(ValidationError, match="needs parameter"):
        pg.read("SELECT * FROM tx WHERE id = :x")
    with pytest.raises(ValidationError, match="empty"):
        pg.read("  ")
    with pytest.raises(ValidationError, match="invalid SQL source URL"):
        SQL("not a url")
    with pytest.raises(ValidationError, match="invalid driver"):
        SQL(database.url, driver="odbc")
    with pytest.raises(ValidationError, match="chunk_rows"):
        SQL(database.url, chunk_rows=0)
    with pytest.raises(ValidationError, match="reads PostgreSQL only"):
        SQL("sqlite:///x.db", driver="adbc").read("SELECT 1")
    with pytest.raises(ValidationError, match="query failed"):
        SQL(database.url, driver="sqlalchemy").read("SELEC 1")


def test_sqlite_through_sqlalchemy(tmp_path: Path, sqlite_project: fti.Project) -> None:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, seq INTEGER, note TEXT)")
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)", [(i, i // 2, None if i < 5 else "n") for i in range(12)]
        )
    source = SQL(f"sqlite:///{path}", project=sqlite_project, chunk_rows=4)
    table = source.read("SELECT * FROM orders WHERE id >= :low ORDER BY id", low=2)
    assert table.num_rows == 10 and table.schema.field("note").type == pa.string()  # NULL first chunk widened
    assert [b.num_rows for b in source.batches("SELECT * FROM orders")] == [4, 4, 4]
    with source.read_incremental("orders", cursor="seq", name="orders") as batch:
        assert batch.table.num_rows == 12
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO orders VALUES (12, 5, 'late tie'), (13, 6, 'new')")
    with source.read_incremental("orders", cursor="seq", name="orders") as batch:
        assert sorted(batch.table.column("id").to_pylist()) == [12, 13]
