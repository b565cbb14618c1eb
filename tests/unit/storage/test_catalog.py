"""The catalog: migrations create exactly the declared tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from fti.errors import BackendError
from fti.plugins import catalog_from_url, offline_store_from_url, online_store_from_url
from fti.storage.metadata.sql import _MIGRATIONS, SqlCatalog, _head_revision
from fti.storage.metadata.tables import metadata


def test_migrated_schema_matches_the_table_definitions(catalog_url: str) -> None:
    catalog = SqlCatalog(catalog_url)
    inspector = inspect(catalog.engine)
    declared = set(metadata.tables)
    assert declared <= set(inspector.get_table_names())
    for name, table in metadata.tables.items():
        migrated = {c["name"] for c in inspector.get_columns(name)}
        assert migrated == {c.name for c in table.columns}, name
    catalog.close()


def test_connecting_twice_is_a_no_op(catalog_url: str) -> None:
    SqlCatalog(catalog_url).close()
    catalog = SqlCatalog(catalog_url)
    assert "alembic_version" in catalog.table_names()
    catalog.close()


def test_a_pinned_sqlite_catalog_keeps_its_wal_between_transactions(tmp_path: Path) -> None:
    """Closing the last connection to the file checkpoints the WAL (and syncs the file) after
    every transaction; a pinned block holds a connection so its transactions skip that."""
    from fti.storage.metadata import projects

    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    wal = tmp_path / "catalog.db-wal"
    projects.get_or_create(catalog, "a")
    assert not wal.exists()  # checkpointed into the file and removed as the connection closed
    with catalog.pinned():
        projects.get_or_create(catalog, "b")
        assert wal.stat().st_size > 0  # the commit stays in the WAL: no checkpoint, no sync
    assert not wal.exists()
    assert [p.name for p in projects.list_projects(catalog)] == ["a", "b"]
    catalog.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def test_the_cheaply_read_head_is_alembics_head() -> None:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    assert _head_revision() == head


def test_an_up_to_date_catalog_is_opened_without_importing_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    SqlCatalog(url).close()
    script = (
        "import sys; from fti.storage.metadata.sql import SqlCatalog; "
        "SqlCatalog(sys.argv[1]).close(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako'}))"
    )
    done = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _columns(catalog: SqlCatalog) -> set[tuple[str, str]]:
    import sqlalchemy as sa

    inspector = sa.inspect(catalog.engine)
    return {(t, c["name"]) for t in inspector.get_table_names() for c in inspector.get_columns(t)}


def test_an_outdated_catalog_is_still_migrated_to_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = SqlCatalog(url)
    head = _head_revision()
    assert head is not None
    config = _alembic_config()
    with catalog.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "-1")
    with catalog.engine.connect() as conn:
        outdated = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert outdated != head
    expected = {(t.name, c.name) for t in metadata.tables.values() for c in t.columns}
    dropped = expected - _columns(catalog)
    assert dropped  # the last migration's tables or columns are gone
    catalog.close()

    catalog = SqlCatalog(url)
    assert expected <= _columns(catalog)
    with catalog.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    catalog.close()


@pytest.mark.parametrize(
    ("factory", "url", "message"),
    [
        (catalog_from_url, "mysql://x/y", "unsupported catalog URL"),
        (online_store_from_url, "memcached://x", "unsupported online store URL"),
        (offline_store_from_url, "ftp://x", "unsupported offline store URL"),
    ],
)
def test_unsupported_urls_are_rejected(factory, url: str, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        factory(url)


def test_unreachable_postgres_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="cannot reach the catalog"):
        SqlCatalog("postgresql://nobody@127.0.0.1:1/none")
