"""Feature queries: which features of which feature groups a feature view joins, and on what.

A query starts from one feature group, the **spine** (``fg.select([...])``); its rows and event
times become the rows of training data. ``.join(other, on=..., prefix=..., max_age=...)`` adds a
group whose values are looked up point-in-time correctly for each spine row (see
:mod:`fti.features.pit`); ``.filter(fg.amount > 10)`` keeps the rows that match (see
:mod:`fti.features.filters`). Every check (unknown columns, join keys, ambiguous names, filter
values) runs when the query is built, so a bad query never reaches the catalog.

Names and defaults follow Hopsworks: ``select_all()`` includes the primary-key and event-time
columns (``include_primary_key=False`` / ``include_event_time=False`` leave them out); ``join``
takes ``left_on``/``right_on`` and ``join_type``; ``read()`` and ``show(n)`` return the rows. A
joined group's join-key or event-time column named like the spine's is the spine row's own key or
time, so it appears once (selected from either group). Unlike Hopsworks, ``join`` and ``filter``
return a new query and leave the one they are called on unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, SchemaError, ValidationError

if TYPE_CHECKING:
    from datetime import datetime

    from fti.features.feature_group import FeatureGroup
    from fti.features.feature_store import FeatureStore
    from fti.features.filters import Condition

_INTS = {"int8", "int16", "int32", "int64"}
JOIN_TYPES = ("left", "inner")
"""``left`` keeps every spine row; ``inner`` drops spine rows that have no row of the joined group
(at or before their event time)."""


@dataclass(frozen=True)
class Part:
    """One feature group of a query: the spine (index 0) or a joined group."""

    group: FeatureGroup
    features: tuple[str, ...]
    on: tuple[str, ...] = ()
    """This group's join columns: its primary key (empty for the spine)."""
    prefix: str = ""
    max_age: timedelta | None = None
    left_on: tuple[str, ...] = ()
    """The spine columns matched with ``on``, in the same order (empty: the same names as ``on``)."""
    join_type: str = "left"

    def output_name(self, column: str) -> str:
        return self.prefix + column

    @property
    def spine_on(self) -> tuple[str, ...]:
        """The spine columns holding this group's key, in the order of :attr:`on`."""
        return self.left_on or self.on


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

    def __init__(self, parts: Sequence[Part], condition: Condition | None = None) -> None:
        self.parts: tuple[Part, ...] = tuple(parts)
        self._columns = _resolve(self.parts)
        self.condition: Condition | None = condition
        """The row filter (``query.filter(...)``), or None."""

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
    def select_all(
        cls, group: FeatureGroup, include_primary_key: bool = True, include_event_time: bool = True
    ) -> Query:
        """Every feature of ``group``; its primary-key and event-time columns unless
        ``include_primary_key`` / ``include_event_time`` is False (Hopsworks' defaults)."""
        for label, flag in (
            ("include_primary_key", include_primary_key),
            ("include_event_time", include_event_time),
        ):
            if not isinstance(flag, bool):
                raise ValidationError(f"{label} must be True or False, got {flag!r}")
        skip = [*([] if include_primary_key else group.primary_key)]
        if not include_event_time and group.event_time:
            skip.append(group.event_time)
        return cls.select_except(group, skip)

    @classmethod
    def select_except(cls, group: FeatureGroup, features: Sequence[str]) -> Query:
        """Every feature of ``group`` (key and event-time columns included) except ``features``."""
        schema = _schema(group)
        if isinstance(features, str) or not isinstance(features, Sequence):
            raise ValidationError(f"select_except() takes a list of feature names, got {features!r}")
        unknown = [f for f in features if f not in schema]
        if unknown:
            raise SchemaError(
                f"unknown feature(s) {unknown} in feature group {group.name!r}; it has {list(schema)}"
            )
        chosen = [name for name in schema if name not in set(features)]
        if not chosen:
            raise ValidationError(f"the selection from {group.name!r} has no features left")
        return cls([Part(group, tuple(chosen))])

    def join(
        self,
        other: Query,
        on: Sequence[str] | str | None = None,
        prefix: str | None = "",
        max_age: timedelta | None = None,
        *,
        left_on: Sequence[str] | str | None = None,
        right_on: Sequence[str] | str | None = None,
        join_type: str = "left",
    ) -> Query:
        """Join the features selected by ``other`` onto every spine row, point-in-time correctly.

        Args:
            other: A selection from one feature group (``fg.select(...)``) without joins; a
                filter it carries applies to the joined result.
            on: Spine columns holding ``other``'s primary key (the same names in both groups);
                default: ``other``'s primary key.
            prefix: Prepended to the names of ``other``'s features in the result, to avoid clashes.
            max_age: Values older than this relative to the spine row's event time are null.
                Only for groups with an event time.
            left_on: Spine columns matched with ``right_on`` when the names differ (instead of ``on``).
            right_on: ``other``'s primary-key columns, in the order of ``left_on``.
            join_type: ``"left"`` keeps every spine row (nulls where ``other`` has no row);
                ``"inner"`` drops spine rows without one.

        Raises:
            SchemaError: the join columns are not the right group's primary key or are missing
                from the spine, key types differ, or a result column name is ambiguous.
            ValidationError: ``on`` together with ``left_on``/``right_on``, an unknown join type.
        """
        if not isinstance(other, Query):
            raise ValidationError(f"join() takes a query such as fg.select_all(), got {type(other).__name__}")
        if len(other.parts) != 1:
            raise ValidationError("join() takes a selection from one feature group; join its groups here")
        right = other.parts[0].group
        spine = self.parts[0].group
        how = _check_join_type(join_type)
        if left_on is not None or right_on is not None:
            if on is not None:
                raise ValidationError("pass either on= or left_on=/right_on=, not both")
            if left_on is None or right_on is None:
                raise ValidationError(
                    "left_on and right_on go together: the spine's columns and the other's key"
                )
            keys = _check_on(right_on, right)
            lefts = [left_on] if isinstance(left_on, str) else list(left_on)
            if len(lefts) != len(_names(right_on, "right_on")) or not all(isinstance(k, str) for k in lefts):
                raise ValidationError(
                    f"left_on {left_on!r} and right_on {right_on!r} must name as many columns each"
                )
            pairs = dict(zip(_names(right_on, "right_on"), lefts, strict=True))
            spine_keys = [pairs[k] for k in keys]  # in the order of the right group's key
        else:
            keys = _check_on(on, right)
            spine_keys = list(keys)
        spine_schema = _schema(spine)
        right_schema = _schema(right)
        missing = [k for k in spine_keys if k not in spine_schema]
        if missing:
            raise SchemaError(
                f"join column(s) {missing} are not columns of the spine feature group {spine.name!r} "
                f"(it has {list(spine_schema)})"
            )
        for left, key in zip(spine_keys, keys, strict=True):
            left_type, right_type = spine_schema[left], right_schema[key]
            if left_type != right_type and not (left_type in _INTS and right_type in _INTS):
                what = repr(key) if left == key else f"{left!r} = {key!r}"
                raise SchemaError(
                    f"join column {what} is {left_type} in {spine.name!r} but {right_type} in "
                    f"{right.name!r}; the types must match"
                )
        if prefix is None:
            prefix = ""
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
        left_names = tuple(spine_keys) if spine_keys != list(keys) else ()
        part = Part(right, other.parts[0].features, tuple(keys), prefix, max_age, left_names, how)
        return Query([*self.parts, part], _and(self.condition, other.condition))

    def filter(self, condition: Condition) -> Query:
        """The rows matching ``condition`` (and any filter the query already has), Hopsworks style:
        ``query.filter((fg.amount > 10) & (fg.category == "food"))``; see :mod:`fti.features.filters`.

        Raises:
            ValidationError: not a filter, or it reads a feature group that is not in the query.
        """
        from fti.features.filters import Filter, Logic

        if not isinstance(condition, (Filter, Logic)):
            raise ValidationError(
                f"filter() takes a condition such as fg.amount > 10, got {type(condition).__name__}"
            )
        groups = {(p.group.name, p.group.version) for p in self.parts}
        for name, version, column in condition.columns():
            if (name, version) not in groups:
                raise ValidationError(
                    f"the filter reads {column!r} of feature group {name!r} version {version}, which is "
                    f"not part of this query ({', '.join(f'{n}:v{v}' for n, v in sorted(groups))}); "
                    "join it first"
                )
        return Query(self.parts, _and(self.condition, condition))

    # --- reading --------------------------------------------------------------------------
    def read(
        self,
        online: bool = False,
        dataframe_type: str = "default",
        read_options: dict[str, Any] | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> Any:
        """The selected columns of the joined rows, over the latest data of every group.

        Rows come in the order of :meth:`FeatureView.get_batch_data
        <fti.features.feature_view.FeatureView.get_batch_data>`: spine event time, then key (a
        spine without event time: the order its rows were written, the newest last).

        Args:
            online: Must be False (online reads are per key: ``fg.online_lookup``,
                ``fv.get_feature_vector``).
            dataframe_type: ``"default"``/``"pandas"``, ``"polars"``, ``"pyarrow"``, ``"numpy"``
                or ``"python"`` (a list of rows).
            read_options: Accepted for Hopsworks compatibility; fti has none.
            start_time: Spine rows with event time >= this (tz-aware).
            end_time: Spine rows with event time < this.
        """
        from fti.features import batch_data

        if online is not False:
            raise ValidationError(
                "query.read(online=True) is not supported: read online values per key with "
                "fg.online_lookup(keys) or fv.get_feature_vector(entry)"
            )
        if read_options is not None and not isinstance(read_options, dict):
            raise ValidationError(f"read_options must be a dict, got {read_options!r}")
        return batch_data.read_query(self, start_time, end_time, dataframe_type=dataframe_type)

    def show(self, n: int, online: bool = False) -> Any:
        """The first ``n`` rows of :meth:`read` as a pandas DataFrame."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValidationError(f"show() takes a number of rows >= 0, got {n!r}")
        return self.read(online).head(n)

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
        """A JSON-ready description; groups are referenced by name and version. Join columns
        with other names (``left_on``), an inner join and a filter are written only when used,
        so the description of a query without them is what it always was."""
        parts = []
        for p in self.parts:
            part: dict[str, Any] = {
                "group": p.group.name,
                "version": p.group.version,
                "features": list(p.features),
                "on": list(p.on),
                "prefix": p.prefix,
                "max_age_seconds": None if p.max_age is None else p.max_age.total_seconds(),
            }
            if p.left_on:
                part["left_on"] = list(p.left_on)
            if p.join_type != "left":
                part["join_type"] = p.join_type
            parts.append(part)
        data: dict[str, Any] = {"parts": parts}
        if self.condition is not None:
            data["filter"] = self.condition.to_dict()
        return data

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
                    tuple(p.get("left_on", ())),
                    p.get("join_type", "left"),
                )
            )
        condition = None
        if data.get("filter") is not None:
            from fti.features import filters

            condition = filters.from_dict(data["filter"])
        return cls(parts, condition)

    def __repr__(self) -> str:
        groups = ", ".join(f"{p.group.name}:v{p.group.version}" for p in self.parts)
        where = "" if self.condition is None else f"; filter {self.condition!r}"
        return f"Query({groups}; {len(self._columns)} columns{where})"


def _schema(group: FeatureGroup) -> dict[str, str]:
    if group.features is None:
        raise SchemaError(
            f"feature group {group.name!r} has no schema yet; insert data or declare features first"
        )
    return {f.name: f.dtype for f in group.features}


def _names(value: Sequence[str] | str, label: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not names or not all(isinstance(k, str) for k in names):
        raise ValidationError(f"{label} must be a list of column names, got {value!r}")
    return list(names)


def _check_on(on: Sequence[str] | str | None, right: FeatureGroup) -> list[str]:
    """The right group's join columns: its primary key, in key order."""
    if on is None:
        return right.primary_key
    keys = _names(on, "on")
    not_keys = [k for k in keys if k not in right.primary_key]
    if not_keys or set(keys) != set(right.primary_key) or len(set(keys)) != len(keys):
        detail = f"{not_keys} are not" if not_keys else f"{list(keys)} is not"
        raise SchemaError(
            f"cannot join {right.name!r} on {list(keys)}: {detail} the primary key of {right.name!r}, "
            f"which is {right.primary_key}; join on exactly its primary-key column(s) (with "
            "left_on=[...] for spine columns of other names)"
        )
    return keys


def _check_join_type(join_type: Any) -> str:
    how = join_type.lower() if isinstance(join_type, str) else join_type
    if how not in JOIN_TYPES:
        raise ValidationError(
            f"join_type must be 'left' or 'inner', got {join_type!r}: the spine's rows are the "
            "training rows, so a right or outer join would invent rows without a spine time; make "
            "the other group the spine instead"
        )
    return str(how)


def _and(first: Condition | None, second: Condition | None) -> Condition | None:
    if first is None:
        return second
    if second is None:
        return first
    return first & second


def _same_as_spine(part: Part, feature: str, name: str, spine: FeatureGroup) -> bool:
    """Whether ``feature`` of a joined ``part``, output as ``name``, is the spine row's own key or
    time: a join column of the spine under its spine name, or the group's event time under the
    spine's event-time name."""
    if feature in part.on and part.spine_on[part.on.index(feature)] == name:
        return True
    return feature == part.group.event_time and name == spine.event_time


def _resolve(parts: tuple[Part, ...]) -> list[OutputColumn]:
    spine = parts[0].group
    spine_schema = _schema(spine)
    reserved = set(spine.key_columns)
    owners: dict[str, str] = {name: spine.name for name in reserved}
    columns: list[OutputColumn] = []
    emitted: set[str] = set()
    for index, part in enumerate(parts):
        schema = _schema(part.group)
        for feature in part.features:
            name = part.output_name(feature)
            if index and _same_as_spine(part, feature, name, spine):
                if name not in emitted:  # the spine row's key or time, selected through this group
                    emitted.add(name)
                    columns.append(OutputColumn(name, 0, name, spine_schema[name]))
                continue
            if name in owners and not (index == 0 and name in reserved):
                raise SchemaError(
                    f"ambiguous column name {name!r}: both {owners[name]!r} and {part.group.name!r} "
                    f"provide it; pass prefix='{part.group.name}_' to join() or select fewer features"
                )
            owners[name] = part.group.name
            emitted.add(name)
            columns.append(OutputColumn(name, index, feature, schema[feature]))
    return columns
