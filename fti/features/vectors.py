"""Online feature vectors: look up each group's latest row, then transform.

A :class:`VectorServer` is compiled once per feature view and training-dataset version (at
``init_serving`` or the first call): the online tables, where each lookup key comes from, the
model-input features and the fitted :class:`~fti.features.transformations.Transformer`. A call
then does one online read per feature group (for all requested entities at once), no catalog
query and no pandas.

Lookup keys come from the request entry; a joined group's key that the entry does not hold is
taken from ``passed_features`` or from the spine group's online row. Groups that are not
online-enabled are request-time groups: their features must arrive in ``passed_features``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from fti.features.query import Query
    from fti.features.transformations import Transformer
    from fti.storage.online.base import OnlineStore

RETURN_TYPES = ("list", "numpy", "pandas", "polars")


@dataclass(frozen=True)
class _Group:
    name: str
    table: str
    online: bool
    keys: tuple[str, ...]
    """Lookup key columns, in the group's primary-key order (names as in the spine)."""
    features: tuple[tuple[int, str], ...]
    """(input position, column) of the model-input features this group provides."""


class VectorServer:
    """Compiled online lookup + transformation for one feature view (see module docs)."""

    def __init__(
        self,
        query: Query,
        inputs: Sequence[str],
        transformer: Transformer,
        online: OnlineStore,
    ) -> None:
        self.view_primary_key = query.spine.primary_key
        self.inputs = list(inputs)
        self.positions = {name: i for i, name in enumerate(self.inputs)}
        self.transformer = transformer
        self.online = online
        self.names = transformer.output_names
        by_name = {c.name: c for c in query.columns()}
        groups: list[_Group] = []
        for index, part in enumerate(query.parts):
            group = part.group
            keys = tuple(group.primary_key)  # joins are on the right group's key names
            features = tuple(
                (self.positions[c.name], c.column)
                for c in by_name.values()
                if c.part == index and c.name in self.positions
            )
            groups.append(_Group(group.name, group.table_name, group.online_enabled, keys, features))
        self.groups = groups
        self.spine_columns = {c for g in groups[1:] for c in g.keys} - set(self.view_primary_key)

    def vectors(
        self,
        entries: Sequence[Mapping[str, Any]],
        passed: Sequence[Mapping[str, Any] | None],
        allow_missing: bool,
    ) -> list[Any]:
        """The transformed model-input columns for ``entries`` (one list/array per output column)."""
        n = len(entries)
        columns: list[list[Any]] = [[None] * n for _ in self.inputs]
        spine_rows: list[dict[str, Any] | None] = [None] * n
        for index, group in enumerate(self.groups):
            rows = self._lookup(index, group, entries, passed, spine_rows, allow_missing)
            if index == 0:
                spine_rows = rows
            for position, column in group.features:
                target = columns[position]
                for i, row in enumerate(rows):
                    if row is not None:
                        target[i] = row[column]
        for i, extra in enumerate(passed):
            if extra:
                for name, value in extra.items():
                    columns[self.positions[name]][i] = value
        return self.transformer.apply(columns)

    def _lookup(
        self,
        index: int,
        group: _Group,
        entries: Sequence[Mapping[str, Any]],
        passed: Sequence[Mapping[str, Any] | None],
        spine_rows: list[dict[str, Any] | None],
        allow_missing: bool,
    ) -> list[dict[str, Any] | None]:
        n = len(entries)
        needs_row = index == 0 and bool(self.spine_columns)
        wanted = [self.inputs[p] for p, _ in group.features]
        if not needs_row and all(p is not None and all(w in p for w in wanted) for p in passed):
            return [None] * n  # every feature of the group is passed in: no lookup
        if not group.online:
            missing = [w for w in wanted if not all(p is not None and w in p for p in passed)]
            if missing:
                raise ValidationError(
                    f"feature group {group.name!r} is not online-enabled, so its features {missing} "
                    "must be given in passed_features"
                )
            return [None] * n
        keys: list[tuple[Any, ...] | None] = []
        for i, entry in enumerate(entries):
            key: list[Any] = []
            for column in group.keys:
                if column in entry:
                    value = entry[column]
                elif passed[i] is not None and column in passed[i]:  # type: ignore[operator]
                    value = passed[i][column]  # type: ignore[index]
                elif spine_rows[i] is not None:
                    value = spine_rows[i][column]  # type: ignore[index]
                else:
                    value = None
                key.append(_plain(value))
            keys.append(None if any(v is None for v in key) else tuple(key))
        present = [k for k in keys if k is not None]
        found = self.online.read(group.table, present) if present else []
        if len(present) == n:
            rows = found
        else:
            it = iter(found)
            rows = [None if k is None else next(it) for k in keys]
        if not allow_missing:
            for i, row in enumerate(rows):
                if row is None:
                    raise NotFoundError(
                        f"no online row in feature group {group.name!r} for "
                        f"{dict(zip(group.keys, keys[i] or (), strict=False)) or dict(entries[i])}; "
                        "insert it, or pass allow_missing=True to get nulls"
                    )
        return rows


def check_entries(entries: Sequence[Any], primary_key: Sequence[str]) -> None:
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ValidationError(
                f"a feature-vector entry must be a mapping such as {{'id': 1}}, got {entry!r}"
            )
        missing = [k for k in primary_key if k not in entry]
        if missing:
            raise ValidationError(
                f"feature-vector entry {dict(entry)!r} is missing key column(s) {missing}; "
                f"the view needs {list(primary_key)}"
            )


def check_passed(
    passed: Any, n: int, known: Mapping[str, int], *, many: bool
) -> list[Mapping[str, Any] | None]:
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
        unknown = [k for k in item if k not in known]
        if unknown:
            raise ValidationError(
                f"passed_features names unknown feature(s) {unknown}; the view's features are {list(known)}"
            )
    return items


def to_rows(columns: list[Any], n: int) -> list[list[Any]]:
    plain = [c.tolist() if hasattr(c, "tolist") else c for c in columns]
    if n == 1:
        return [[c[0] for c in plain]]
    return [list(row) for row in zip(*plain, strict=True)]


def _plain(value: Any) -> Any:
    if type(value) in (int, str, float):
        return value
    item = getattr(value, "item", None)
    return item() if item is not None else value
