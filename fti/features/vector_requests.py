"""What a feature-vector request holds, checked, and how vectors go back to the caller.

Entries (one primary-key mapping per entity) and ``passed_features`` (request-time values by
feature name) are checked before any online read, so a bad request reads nothing; see
:mod:`fti.features.vectors` for the lookups themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fti.errors import ValidationError


def check_entries(entries: Sequence[Any], primary_key: Sequence[str]) -> None:
    """Raise ValidationError unless every entry is a mapping holding every ``primary_key`` column."""
    for entry in entries:
        if type(entry) is not dict and not isinstance(entry, Mapping):
            raise ValidationError(
                f"a feature-vector entry must be a mapping such as {{'id': 1}}, got {entry!r}"
            )
        for key in primary_key:
            if key in entry:
                continue
            missing = [k for k in primary_key if k not in entry]
            raise ValidationError(
                f"feature-vector entry {dict(entry)!r} is missing key column(s) {missing}; "
                f"the view needs {list(primary_key)}"
            )


def check_passed(
    passed: Any, n: int, known: Mapping[str, int], *, many: bool, computed: Sequence[str] = ()
) -> list[Mapping[str, Any] | None]:
    """``passed_features`` as one mapping (or None) per entry, checked against the view's ``known``
    feature names (on-demand outputs in ``computed`` may not be passed)."""
    if passed is None:
        return [None] * n
    if isinstance(passed, Mapping):
        items: list[Any] = [passed] * n
    elif many and isinstance(passed, Sequence) and not isinstance(passed, str) and len(passed) == n:
        items = list(passed)
    else:
        raise ValidationError(
            "passed_features must be a mapping of feature name to value"
            + (" or a list of such mappings, one per entry" if many else "")
        )
    for item in items:
        if item is None:
            continue
        if not isinstance(item, Mapping):
            raise ValidationError(f"passed_features entries must be mappings, got {item!r}")
        derived = [k for k in item if k in computed]
        if derived:
            raise ValidationError(
                f"passed_features names on-demand feature(s) {derived}, which the view computes; "
                "pass their inputs instead"
            )
        unknown = [k for k in item if k not in known]
        if unknown:
            raise ValidationError(
                f"passed_features names unknown feature(s) {unknown}; the view's features are {list(known)}"
            )
    return items


def to_rows(columns: list[Any], n: int) -> list[list[Any]]:
    """Columns (lists or numpy arrays) of ``n`` values as ``n`` rows of plain Python values."""
    plain = [c.tolist() if hasattr(c, "tolist") else c for c in columns]
    if n == 1:
        return [[c[0] for c in plain]]
    return [list(row) for row in zip(*plain, strict=True)]


def plain_key_value(value: Any) -> Any:
    """A key value as the online store compares it: numpy and other scalars as Python values."""
    if type(value) in (int, str, float):
        return value
    item = getattr(value, "item", None)
    return item() if item is not None else value
