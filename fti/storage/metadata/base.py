"""The metadata-catalog role.

The catalog is relational on every backend (SQLite embedded, PostgreSQL in production), so the one
implementation is SQLAlchemy Core over the tables in ``fti.storage.metadata.tables``; this Protocol
is what the rest of fti relies on.

Only each domain's ``records.py`` (and the catalog's own modules here) write SQL against the
tables. Everyone else opens a transaction with :meth:`Catalog.begin` (or a read connection with
:meth:`Catalog.connect`) and passes the ``Connection`` to records functions, so several of them
can share one transaction.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Re-exported so that modules outside storage can name the type without importing SQLAlchemy.
    from sqlalchemy.engine import Connection as Connection
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

    def begin(self) -> AbstractContextManager[Connection]:
        """A connection in one transaction: committed when the block ends, rolled back on an error."""
        ...

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection for reads (nothing is committed)."""
        ...

    def pinned(self) -> AbstractContextManager[None]:
        """Keep the catalog's connection warm for a block that runs several short transactions
        (a feature-group write): each of them is as cheap as it can be on this backend."""
        ...

    def close(self) -> None:
        """Dispose of pooled connections."""
        ...
