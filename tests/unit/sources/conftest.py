"""Fixtures of the source tests: a PostgreSQL database with a password-protected user."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from fti.testing.servers import PostgresServer

_counter = itertools.count()
PASSWORD = "Pg-pa$$ w0rd/with:specials@"


@dataclass
class Database:
    url: str
    """Trusted superuser URL (no password), for setting up tables."""
    protected_url: str
    """The same database as the user ``analytics``, which needs PASSWORD."""

    def execute(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


@pytest.fixture(scope="session")
def analytics_user(postgres_server: PostgresServer) -> str:
    postgres_server.create_password_user("analytics", PASSWORD)
    return PASSWORD


@pytest.fixture
def database(postgres_server: PostgresServer, analytics_user: str) -> Database:
    name = f"fti_source_{next(_counter)}"
    url = postgres_server.create_database(name)
    return Database(url, f"postgresql://analytics@127.0.0.1:{postgres_server.port}/{name}")
