"""The alias history replay behind ``ModelRegistry.rollback`` (a property test on the pure function)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from fti.registry.aliases import AliasChange, rollback_target

_AT = datetime(2026, 1, 1, tzinfo=UTC)


def _moves(versions: list[int | None]) -> list[AliasChange]:
    out, held = [], None
    for v in versions:
        out.append(AliasChange("production", held, v, _AT, "me", ""))
        held = v
    return out


@given(st.lists(st.integers(1, 50), min_size=1, max_size=12, unique=True), st.data())
def test_repeated_rollbacks_retrace_the_moves_in_reverse(versions: list[int], data: st.DataObject) -> None:
    history = _moves(versions)
    steps = data.draw(st.integers(0, len(versions) - 1))
    for k in range(steps):
        current, previous = rollback_target(history)
        assert (current, previous) == (versions[-1 - k], versions[-2 - k])
        history.append(AliasChange("production", current, previous, _AT, "me", "rollback"))
    current, previous = rollback_target(history)
    assert current == versions[-1 - steps]
    assert previous == (versions[-2 - steps] if steps < len(versions) - 1 else None)


def test_a_deletion_forgets_what_the_alias_held() -> None:
    assert rollback_target(_moves([1, 2, None, 3])) == (3, None)
    assert rollback_target(_moves([1, 2, None])) == (None, None)
    assert rollback_target([]) == (None, None)
