"""The vector-store Protocol: one index per feature group, latest vector per key, with attributes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

METRICS = ("cosine", "l2", "dot")
"""Distances, lower is nearer: ``cosine`` is 1 - cosine similarity, ``l2`` the squared Euclidean
distance, ``dot`` is 1 - the inner product."""


def check_upsert(keys: Sequence[str], vectors: np.ndarray, metric: str) -> np.ndarray:
    """The vectors of an upsert as one contiguous float32 row per key (every store's input
    check); an unknown metric is a ValidationError."""
    import numpy as np

    from fti.errors import ValidationError

    if metric not in METRICS:
        raise ValidationError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    return rows if rows.ndim == 2 else rows.reshape(len(keys), -1)


class VectorStore(Protocol):
    """Embedding indexes by name. ``fti.testing.contracts.vector`` checks every implementation:

    - ``upsert`` inserts or replaces the vector and attributes of each key; with ``replace`` the
      index holds exactly the given rows afterwards (a rebuild). It records ``version`` as the
      index's applied offline version in the same atomic step (or after the rows), so
      ``applied_version`` never claims rows that are not there.
    - ``search`` returns up to ``k`` keys nearest first with their distances (see :data:`METRICS`);
      ``filter`` is a SQL predicate over the attribute columns (``category = 'books' AND n > 3``),
      applied before the ``k`` are chosen. Deleted keys are never returned.
    - Keys are strings (the caller encodes its primary keys); indexes are isolated.
    """

    url: str

    def upsert(
        self,
        index: str,
        keys: Sequence[str],
        vectors: np.ndarray,
        attributes: pa.Table,
        *,
        metric: str,
        version: int,
        replace: bool = False,
    ) -> None:
        """Write ``vectors`` (n x dim float32) with their ``attributes`` (n rows) under ``keys``."""
        ...

    def delete(self, index: str, keys: Sequence[str], *, version: int) -> None:
        """Remove ``keys`` (missing ones are ignored) and mark ``version`` applied."""
        ...

    def search(
        self, index: str, vector: np.ndarray, k: int, filter: str | None = None
    ) -> list[tuple[str, float]]:
        """The ``k`` nearest keys to ``vector`` (``(key, distance)``, nearest first)."""
        ...

    def applied_version(self, index: str) -> int | None:
        """The last offline version written to ``index``, or None (no index, or unreadable)."""
        ...

    def count(self, index: str) -> int:
        """Live keys in ``index`` (0 when it does not exist)."""
        ...

    def drop(self, index: str) -> None:
        """Remove ``index`` entirely. A missing index is a no-op."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...
