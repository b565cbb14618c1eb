"""SQLAlchemy catalog for SQLite and PostgreSQL, migrated to the latest schema on connect."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from fti.errors import BackendError

_MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:None|[\"']([^\"']+)[\"'])\s*$", re.M)


@functools.cache
def _head_revision() -> str | None:
    """The head revision read from the version files' ``revision``/``down_revision`` lines.

    None when the files do not describe one linear history this parser understands (several
    heads, a tuple ``down_revision``...): the caller then asks Alembic itself.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((_MIGRATIONS / "versions").glob("*.py")):
        found = dict((m.group(1), m.group(2)) for m in _REVISION.finditer(path.read_text("utf-8")))
        if "revision" not in found or found["revision"] is None or "down_revision" not in found:
            return None
        revisions.add(found["revision"])
        if found["down_revision"] is not None:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


class SqlCatalog:
    """A catalog at a ``sqlite:///path`` or ``postgresql://user:pw@host:port/db`` URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = _create_engine(url)
        try:
            self._migrate()
        except OperationalError as exc:
            self._engine.dispose()
            raise BackendError(
                f"cannot reach the catalog at {url!r}: {exc.orig}. Check FTI_CATALOG_URL and that the "
                "database server is running."
            ) from exc

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def begin(self) -> AbstractContextManager[Connection]:
        return self._engine.begin()

    def connect(self) -> AbstractContextManager[Connection]:
        return self._engine.connect()

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Hold one idle SQLite connection for the block: each transaction opens and closes its own
        connection (no pool, so none is shared across threads or forks), and closing the last one
        checkpoints the WAL and syncs the file, about 3 ms a transaction (0.6 ms with this one
        open). Nothing on PostgreSQL, whose pool keeps connections (a block holding one of them
        could exhaust the pool for the writes inside it)."""
        if self.dialect != "sqlite":
            yield
            return
        with self._engine.connect():  # no statement: no transaction, nothing locked
            yield

    def close(self) -> None:
        self._engine.dispose()

    def _current_revision(self) -> str | None:
        """The single revision in ``alembic_version``, or None (no table yet, none or several)."""
        with self._engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None  # a fresh catalog: Alembic creates the table
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        return str(rows[0][0]) if len(rows) == 1 else None

    def _migrate(self) -> None:
        # Fast path, taken by every connect to an up-to-date catalog (e.g. a model server's):
        # comparing alembic_version with the head read from the version files avoids importing
        # Alembic and loading every migration module (~11 MB RSS, tens of ms).
        head = _head_revision()
        if head is not None and self._current_revision() == head:
            return
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self._engine.connect() as conn:
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
        from alembic import command

        with self._engine.begin() as conn:
            if self.dialect == "postgresql":
                # Two processes connecting to a fresh catalog at once must not both migrate.
                conn.execute(text("SELECT pg_advisory_xact_lock(7252091)"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def table_names(self) -> list[str]:
        return sorted(inspect(self._engine).get_table_names())


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise BackendError(
                "install fti[postgres] to use a postgresql:// catalog (pip install 'fti[postgres]')"
            ) from exc
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise BackendError(
        f"unsupported catalog URL {url!r}: use sqlite:///path/to/catalog.db or postgresql://user@host/db"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take control of transactions so BEGIN IMMEDIATE serialises writers instead of failing late.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
