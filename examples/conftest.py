"""The examples' tests use the platform's fixtures (real catalogs, servers) from tests/conftest.py."""

from tests.conftest import home, redis_server, sqlite_project

__all__ = ["home", "redis_server", "sqlite_project"]
