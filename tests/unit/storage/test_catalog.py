"""The catalog: migrations create exactly the declared tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from fti.errors import BackendError
from fti.plugins import catalog_from_url, offline_store_from_url, online_store_from_url
from fti.storage.metadata.sql import SqlCatalog
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
