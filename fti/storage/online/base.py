"""The online-store Protocol: latest row per key, out-of-order safe, with an applied-version mark."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

Key = tuple[Any, ...]
"""A primary-key value: one element per primary-key column, in the group's key order."""


class OnlineStore(Protocol):
    """Latest feature values per primary key, one table per feature group.

    Invariants every implementation keeps (``fti.testing.contracts.online`` checks them):

    - ``write`` is idempotent per key and event time, and an older event never overwrites a newer
      one (rows arriving out of order are ignored when the stored row is newer; an equal event
      time overwrites). Without an event time column the last write wins.
    - A written row replaces the stored row as a whole: stored columns absent from ``rows`` read
      back as ``None``. New columns may appear in a later write; older rows read ``None`` there.
    - ``write`` records ``version`` as the table's applied offline version in the same atomic step
      as the rows (or after all of them), so ``applied_version`` never claims rows that are not
      there. ``version=None`` writes rows only and leaves it unchanged: rows pushed ahead of their
      offline commit, and parallel writers of one commit (Spark executors), whose last step
      records the version with an empty write. Invalid rows (missing or null key/event-time
      values) raise before anything is written.
    - ``read`` returns one entry per requested key, in request order, ``None`` for misses (and for
      every key of a table that does not exist). Key types matter: ``1`` never matches ``"1"``.
    - Values come back as Python scalars: int, float, str, bool, bytes, tz-aware UTC datetime,
      ``datetime.date``, None (float NaN reads back as None); list/struct values as JSON values.
    - Tables are isolated: writing or deleting one never touches another.
    """

    url: str

    def write(
        self,
        table: str,
        rows: pa.Table,
        *,
        key_columns: Sequence[str],
        event_time: str | None,
        version: int | None,
    ) -> int:
        """Upsert ``rows`` (at most one row per key) and mark ``version`` applied (None: leave the
        applied version as it is); returns rows given."""
        ...

    def read(self, table: str, keys: Sequence[Key]) -> list[dict[str, Any] | None]:
        """The stored row for each key (all columns, keys included), in request order."""
        ...

    def read_columns(
        self, table: str, keys: Sequence[Key], columns: Sequence[str]
    ) -> list[tuple[Any, ...] | None]:
        """The values of ``columns`` in the stored row of each key, as a tuple in ``columns`` order,
        in request order: what :meth:`read` gives, picked (a column the row lacks is ``None``)."""
        ...

    def applied_version(self, table: str) -> int | None:
        """The last offline version written to ``table``, or None if nothing was written."""
        ...

    def delete_table(self, table: str) -> None:
        """Remove every row of ``table`` and its applied version. Missing tables are a no-op."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
