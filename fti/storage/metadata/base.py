"""The metadata-catalog role.

The catalog is relational on every backend (SQLite embedded, PostgreSQL in production), so the one
implementation is SQLAlchemy Core over the tables in ``fti.storage.metadata.tables``; this Protocol
is what the rest of fti relies on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class Catalog(Protocol):
    """A migrated relational catalog."""

    url: str

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine; use ``engine.begin()`` for one transaction."""
        ...

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        ...

    def close(self) -> None:
        """Dispose of pooled connections."""
        ...
