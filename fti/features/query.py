"""Feature queries: which features of which feature groups a feature view joins, and on what.

A query starts from one feature group, the **spine** (``fg.select([...])``); its rows and event
times become the rows of training data. ``.join(other, on=..., prefix=..., max_age=...)`` adds a
group whose values are looked up point-in-time correctly for each spine row (see
:mod:`fti.features.pit`). Every check (unknown columns, join keys, ambiguous names) runs when the
query is built, so a bad query never reaches the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, SchemaError, ValidationError

if TYPE_CHECKING:
    from fti.features.feature_group import FeatureGroup
    from fti.features.feature_store import FeatureStore

_INTS = {"int8", "int16", "int32", "int64"}


@dataclass(frozen=True)
class Part:
    """One feature group of a query: the spine (index 0) or a joined group."""

    group: FeatureGroup
    features: tuple[str, ...]
    on: tuple[str, ...] = ()
    """Join columns (names shared by the spine and this group's primary key); empty for the spine."""
    prefix: str = ""
    max_age: timedelta | None = None

    def output_name(self, column: str) -> str:
        return self.prefix + column


@dataclass(frozen=True)
class OutputColumn:
    """A column of the joined result: its output name and where it comes from."""

    name: str
    part: int
    column: str
    dtype: str


class Query:
    """A selection of features from a spine feature group, plus left joins of other groups.

    Build one with ``fg.select([...])``, ``fg.select_all()`` or ``fg.select_except([...])``.
    """

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts: tuple[Part, ...] = tuple(parts)
        self._columns = _resolve(self.parts)

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def select(cls, group: FeatureGroup, features: Sequence[str]) -> Query:
        """Select ``features`` (any columns of ``group``, keys included) in the given order."""
        schema = _schema(group)
        if isinstance(features, str) or not isinstance(features, Sequence) or not features:
            raise ValidationError(
                f"select() takes a non-empty list of feature names of {group.name!r}, got {features!r}"
            )
        unknown = [f for f in features if f not in schema]
        if unknown:
            raise SchemaError(
                f"unknown feature(s) {unknown} in feature group {group.name!r}; it has {list(schema)}"
            )
        if len(set(features)) != len(features):
            raise ValidationError(f"select() lists a feature twice: {list(features)}")
        return cls([Part(group, tuple(features))])

    @classmethod
    def select_all(cls, group: FeatureGroup) -> Query:
        """Every feature of ``group`` except its primary-key and event-time columns."""
        return cls.select_except(group, [])

    @classmethod
    def select_except(cls, group: FeatureGroup, features: Sequence[str]) -> Query:
        """Like :meth:`select_all`, without ``features``."""
        schema = _schema(group)
        if isinstance(features, str) or not isinstance(features, Sequence):
            raise ValidationError(f"select_except() takes a list of feature names, got {features!r}")
        unknown = [f for f in features if f not in schema]
        if unknown:
            raise SchemaError(
                f"unknown feature(s) {unknown} in feature group {group.name!r}; it has {list(schema)}"
            )
        skip = {*features, *group.key_columns}
        chosen = [name for name in schema if name not in skip]
        if not chosen:
            raise ValidationError(f"the selection from {group.name!r} has no features left")
        return cls([Part(group, tuple(chosen))])

    def join(
        self,
        other: Query,
        on: Sequence[str] | str | None = None,
        prefix: str = "",
        max_age: timedelta | None = None,
    ) -> Query:
        """Left-join the features selected by ``other`` onto every spine row.

        Args:
            other: A selection from one feature group (``fg.select(...)``) without joins.
            on: Spine columns holding ``other``'s primary key (the same names in both groups);
                default: ``other``'s primary key.
            prefix: Prepended to the names of ``other``'s features in the result, to avoid clashes.
            max_age: Values older than this relative to the spine row's event time are null.
                Only for groups with an event time.

        Raises:
            SchemaError: ``on`` is not the right group's primary key or missing from the spine,
                key types differ, or a result column name is ambiguous.
        """
        if not isinstance(other, Query):
            raise ValidationError(f"join() takes a query such as fg.select_all(), got {type(other).__name__}")
        if len(other.parts) != 1:
            raise ValidationError("join() takes a selection from one feature group; join its groups here")
        right = other.parts[0].group
        spine = self.parts[0].group
        keys = _check_on(on, right)
        spine_schema = _schema(spine)
        right_schema = _schema(right)
        missing = [k for k in keys if k not in spine_schema]
        if missing:
            raise SchemaError(
                f"join column(s) {missing} are not columns of the spine feature group {spine.name!r} "
                f"(it has {list(spine_schema)})"
            )
        for key in keys:
            left_type, right_type = spine_schema[key], right_schema[key]
            if left_type != right_type and not (left_type in _INTS and right_type in _INTS):
                raise SchemaError(
                    f"join column {key!r} is {left_type} in {spine.name!r} but {right_type} in "
                    f"{right.name!r}; the types must match"
                )
        if not isinstance(prefix, str):
            raise ValidationError(f"prefix must be a string, got {prefix!r}")
        if max_age is not None:
            if not isinstance(max_age, timedelta) or max_age <= timedelta(0):
                raise ValidationError(f"max_age must be a positive datetime.timedelta, got {max_age!r}")
            if right.event_time is None:
                raise ValidationError(
                    f"max_age needs an event time, but feature group {right.name!r} has none "
                    "(it is joined on key only)"
                )
            if spine.event_time is None:
                raise ValidationError(
                    f"max_age is measured from the spine's event time, but the spine {spine.name!r} "
                    "has none (joined groups contribute their latest row per key)"
                )
        part = Part(right, other.parts[0].features, tuple(keys), prefix, max_age)
        return Query([*self.parts, part])

    # --- description ----------------------------------------------------------------------
    @property
    def spine(self) -> FeatureGroup:
        return self.parts[0].group

    def columns(self) -> list[OutputColumn]:
        """The selected columns of the result, in query order, with their output names."""
        return list(self._columns)

    def key_columns(self) -> list[str]:
        """The spine's primary key and event time: always part of the joined result."""
        return self.spine.key_columns

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; groups are referenced by name and version."""
        return {
            "parts": [
                {
                    "group": p.group.name,
                    "version": p.group.version,
                    "features": list(p.features),
                    "on": list(p.on),
                    "prefix": p.prefix,
                    "max_age_seconds": None if p.max_age is None else p.max_age.total_seconds(),
                }
                for p in self.parts
            ]
        }

    def inputs(self, labels: Sequence[str]) -> list[tuple[str, str]]:
        """``(name, dtype)`` of every output column except ``labels``: a model's inputs."""
        return [(c.name, c.dtype) for c in self.columns() if c.name not in set(labels)]

    @classmethod
    def of_view(cls, data: dict[str, Any], store: FeatureStore, view: str) -> Query:
        """The stored query of ``view`` (described for messages); NotFoundError naming the
        missing group when one it reads was deleted."""
        try:
            return cls.from_dict(data, store)
        except NotFoundError as exc:
            raise NotFoundError(
                f"{view} reads {exc.message}; the view cannot be used any more: delete it with fv.delete()"
            ) from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any], store: FeatureStore) -> Query:
        parts = []
        for p in data["parts"]:
            group = store.get_feature_group(p["group"], p["version"])
            age = p["max_age_seconds"]
            parts.append(
                Part(
                    group,
                    tuple(p["features"]),
                    tuple(p["on"]),
                    p["prefix"],
                    None if age is None else timedelta(seconds=age),
                )
            )
        return cls(parts)

    def __repr__(self) -> str:
        groups = ", ".join(f"{p.group.name}:v{p.group.version}" for p in self.parts)
        return f"Query({groups}; {len(self._columns)} columns)"


def _schema(group: FeatureGroup) -> dict[str, str]:
    if group.features is None:
        raise SchemaError(
            f"feature group {group.name!r} has no schema yet; insert data or declare features first"
        )
    return {f.name: f.dtype for f in group.features}


def _check_on(on: Sequence[str] | str | None, right: FeatureGroup) -> list[str]:
    if on is None:
        return right.primary_key
    keys = [on] if isinstance(on, str) else on
    if not isinstance(keys, Sequence) or not keys or not all(isinstance(k, str) for k in keys):
        raise ValidationError(f"on must be a list of column names, got {on!r}")
    not_keys = [k for k in keys if k not in right.primary_key]
    if not_keys or set(keys) != set(right.primary_key) or len(set(keys)) != len(keys):
        detail = f"{not_keys} are not" if not_keys else f"{list(keys)} is not"
        raise SchemaError(
            f"cannot join {right.name!r} on {list(keys)}: {detail} the primary key of {right.name!r}, "
            f"which is {right.primary_key}; join on exactly its primary-key column(s)"
        )
    return list(keys)


def _resolve(parts: tuple[Part, ...]) -> list[OutputColumn]:
    spine = parts[0].group
    reserved = set(spine.key_columns)
    owners: dict[str, str] = {name: spine.name for name in reserved}
    columns: list[OutputColumn] = []
    for index, part in enumerate(parts):
        schema = _schema(part.group)
        for feature in part.features:
            name = part.output_name(feature)
            if name in owners and not (index == 0 and name in reserved):
                raise SchemaError(
                    f"ambiguous column name {name!r}: both {owners[name]!r} and {part.group.name!r} "
                    f"provide it; pass prefix='{part.group.name}_' to join() or select fewer features"
                )
            owners[name] = part.group.name
            columns.append(OutputColumn(name, index, feature, schema[feature]))
    return columns
