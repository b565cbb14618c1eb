"""Aliases: movable, unique-per-model names (``production``) for model versions, with history.

An alias name is 1-63 of ``[a-z0-9_-]``. Moving one is a single catalog transaction in
``fti.registry.records`` (the alias row and its history row change together), so readers see the
old or the new version, never none; every change records who, when, from and to
(:class:`AliasChange`), so :func:`rollback_target` finds the version an alias held before and
``ModelRegistry.rollback`` moves it back in one call, with its reason in the history.
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


def rollback_target(history: list[AliasChange]) -> tuple[int | None, int | None]:
    """``(current, previous)`` version of one alias from its history, oldest change first.

    The history is replayed as a stack of the versions the alias held: a move pushes, a move back
    to the version under the top (a rollback, by hand or by ``rollback``) pops, and a deletion
    starts over. So rolling back twice after ``1 -> 2 -> 3`` gives 2, then 1 — never 3 again.
    """
    stack: list[int] = []
    for change in history:
        if change.to_version is None:
            stack = []
        elif len(stack) >= 2 and change.to_version == stack[-2]:
            stack.pop()
        else:
            stack.append(change.to_version)
    if not stack:
        return None, None
    return stack[-1], (stack[-2] if len(stack) >= 2 else None)
