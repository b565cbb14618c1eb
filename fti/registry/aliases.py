"""Aliases: movable, unique-per-model names (``production``) for model versions, with history.

An alias name is 1-63 of ``[a-z0-9_-]``. Moving one is a single catalog transaction in
``fti.registry.records`` (the alias row and its history row change together), so readers see the
old or the new version, never none; every change records who, when, from and to
(:class:`AliasChange`), so a rollback is one ``set_alias`` call and the history shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fti._names import check_alias as check_alias  # the alias rule lives with the other name rules


@dataclass(frozen=True)
class AliasChange:
    """One change of an alias: ``from_version`` None = created, ``to_version`` None = deleted."""

    alias: str
    from_version: int | None
    to_version: int | None
    changed_at: datetime
    changed_by: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "changed_at": self.changed_at.isoformat(),
            "changed_by": self.changed_by,
            "reason": self.reason,
        }
