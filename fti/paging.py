"""Pages of listing and search results: ``fs.search_feature_groups(...)``, ``mr.search_model_versions(...)``.

Every listing that can grow large (feature groups, model versions, runs) is paginated by
``offset``/``limit`` in the catalog query itself, so a page costs the same with 10 or 10,000 rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from fti.errors import ValidationError

T = TypeVar("T")

MAX_LIMIT = 1000
"""The largest page a listing returns."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results: ``items``, and where it sits among ``total`` matches."""

    items: list[T]
    total: int
    offset: int
    limit: int

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_next(self) -> bool:
        """Whether more results follow this page."""
        return self.offset + len(self.items) < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0


def check_page(offset: object, limit: object) -> tuple[int, int]:
    """Validate ``offset`` (>= 0) and ``limit`` (0 to :data:`MAX_LIMIT`; 0 only counts)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"offset must be an integer >= 0, got {offset!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be an integer from 0 to {MAX_LIMIT}, got {limit!r}")
    return offset, limit


def check_text(text: object, what: str = "search text") -> str:
    """A search string, lowercased (matching is case-insensitive); at most 200 characters."""
    if not isinstance(text, str) or len(text) > 200:
        raise ValidationError(f"{what} must be a string of at most 200 characters, got {text!r}")
    return text.strip().lower()
