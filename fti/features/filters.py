"""Row filters of feature queries, written the Hopsworks way: ``fg.amount > 10``.

A feature group hands out :class:`FeatureColumn` handles (``fg.amount``, ``fg["amount"]``,
``fg.get_feature("amount")``) whose comparisons build a :class:`Filter`; ``&`` and ``|`` combine
filters into a :class:`Logic` tree. ``query.filter(...)`` (or ``fg.filter(...)``) attaches one to
a query: it is stored with a feature view's query and applies to everything read through it
(``query.read()``, training data, batch data), as a SQL ``WHERE`` on the joined rows (a joined
group's column is the value its point-in-time row holds; a spine row without one does not match).

Values are checked against the column's dtype when the filter is built, so a filter that could
never run never reaches the catalog. Python's ``and``/``or``/``not`` and chained comparisons
(``1 < fg.x < 3``) cannot be overloaded: they raise instead of silently keeping one side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from fti._duckdb import quote as q
from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.features.feature_group import FeatureGroup

OPERATORS = {"<": "<", "<=": "<=", "==": "=", "!=": "<>", ">": ">", ">=": ">=", "in": "IN", "like": "LIKE"}
"""Filter operators and their SQL."""
_NUMBERS = {"int8", "int16", "int32", "int64", "float32", "float64"}


class FeatureColumn:
    """A feature (column) of a feature group, for building filters: ``fg.amount > 10``.

    Attributes:
        name: The column name.
        dtype: Its fti dtype.
        group_name: The feature group it belongs to.
        group_version: That group's version.
    """

    __hash__ = None  # type: ignore[assignment]  # == builds a filter, so it cannot be a dict key

    def __init__(self, group: FeatureGroup, name: str, dtype: str) -> None:
        self.group_name = group.name
        self.group_version = group.version
        self.name = name
        self.dtype = dtype

    def _filter(self, op: str, value: Any) -> Filter:
        return Filter(self.group_name, self.group_version, self.name, self.dtype, op, value)

    def __lt__(self, value: Any) -> Filter:
        return self._filter("<", value)

    def __le__(self, value: Any) -> Filter:
        return self._filter("<=", value)

    def __eq__(self, value: Any) -> Filter:  # type: ignore[override]
        return self._filter("==", value)

    def __ne__(self, value: Any) -> Filter:  # type: ignore[override]
        return self._filter("!=", value)

    def __gt__(self, value: Any) -> Filter:
        return self._filter(">", value)

    def __ge__(self, value: Any) -> Filter:
        return self._filter(">=", value)

    def isin(self, values: Sequence[Any]) -> Filter:
        """Rows whose value is one of ``values`` (SQL ``IN``)."""
        return self._filter("in", values)

    def contains(self, values: Sequence[Any]) -> Filter:
        """Hopsworks' older name of :meth:`isin`."""
        return self.isin(values)

    def like(self, pattern: str) -> Filter:
        """Rows whose text matches the SQL ``LIKE`` pattern (``%`` any text, ``_`` one character)."""
        return self._filter("like", pattern)

    def __bool__(self) -> bool:
        raise ValidationError(
            f"feature {self.name!r} has no truth value: compare it (fg.{self.name} > 10) to make a filter"
        )

    def __repr__(self) -> str:
        return f"FeatureColumn({self.group_name}:v{self.group_version}.{self.name}, {self.dtype})"


class _Condition:
    """What :class:`Filter` and :class:`Logic` share: ``&``, ``|`` and no truth value."""

    def __and__(self, other: Condition) -> Logic:
        return Logic("and", self, _check_condition(other, "&"))  # type: ignore[arg-type]

    def __or__(self, other: Condition) -> Logic:
        return Logic("or", self, _check_condition(other, "|"))  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        raise ValidationError(
            "a filter has no truth value: combine filters with & and | in parentheses, e.g. "
            "(fg.a > 1) & (fg.b < 2), not with and/or or chained comparisons such as 1 < fg.a < 2"
        )


class Filter(_Condition):
    """One comparison of a feature group's column with a value (see :class:`FeatureColumn`)."""

    def __init__(
        self, group_name: str, group_version: int, column: str, dtype: str, op: str, value: Any
    ) -> None:
        if op not in OPERATORS:
            raise ValidationError(f"unknown filter operator {op!r}; use one of {list(OPERATORS)}")
        self.group_name = group_name
        self.group_version = group_version
        self.column = column
        self.dtype = dtype
        self.op = op
        self.value = _check_value(column, dtype, op, value)

    def columns(self) -> list[tuple[str, int, str]]:
        """``(group, version, column)`` of every column the filter reads."""
        return [(self.group_name, self.group_version, self.column)]

    def sql(self, alias: Callable[[str, int], str]) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters; ``alias(group, version)`` names a group's table."""
        column = f"{alias(self.group_name, self.group_version)}.{q(self.column)}"
        if self.op == "in":
            if not self.value:
                return "FALSE", []
            return f"{column} IN ({', '.join('?' for _ in self.value)})", list(self.value)
        return f"{column} {OPERATORS[self.op]} ?", [self.value]

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, datetime):
            value = {"timestamp": value.isoformat()}
        elif isinstance(value, date):
            value = {"date": value.isoformat()}
        return {
            "group": self.group_name,
            "version": self.group_version,
            "column": self.column,
            "dtype": self.dtype,
            "op": self.op,
            "value": value,
        }

    def __repr__(self) -> str:
        return f"Filter({self.group_name}.{self.column} {self.op} {self.value!r})"


class Logic(_Condition):
    """``left & right`` (``op="and"``) or ``left | right`` (``op="or"``)."""

    def __init__(self, op: str, left: Condition, right: Condition) -> None:
        if op not in ("and", "or"):
            raise ValidationError(f"filters combine with 'and' or 'or', got {op!r}")
        self.op = op
        self.left = left
        self.right = right

    def columns(self) -> list[tuple[str, int, str]]:
        return [*self.left.columns(), *self.right.columns()]

    def sql(self, alias: Callable[[str, int], str]) -> tuple[str, list[Any]]:
        left, left_params = self.left.sql(alias)
        right, right_params = self.right.sql(alias)
        return f"({left} {self.op.upper()} {right})", [*left_params, *right_params]

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "left": self.left.to_dict(), "right": self.right.to_dict()}

    def __repr__(self) -> str:
        return f"({self.left!r} {'&' if self.op == 'and' else '|'} {self.right!r})"


Condition = Filter | Logic


def from_dict(data: dict[str, Any]) -> Condition:
    """The condition stored by ``to_dict`` (a feature view's query in the catalog)."""
    if data["op"] in ("and", "or"):
        return Logic(data["op"], from_dict(data["left"]), from_dict(data["right"]))
    value = data["value"]
    if isinstance(value, dict) and "timestamp" in value:
        value = datetime.fromisoformat(value["timestamp"])
    elif isinstance(value, dict) and "date" in value:
        value = date.fromisoformat(value["date"])
    return Filter(data["group"], data["version"], data["column"], data["dtype"], data["op"], value)


def _check_condition(value: Any, symbol: str) -> Condition:
    if not isinstance(value, (Filter, Logic)):
        raise ValidationError(
            f"{symbol} combines filters such as (fg.amount > 10), got {type(value).__name__}"
        )
    return value


def _check_value(column: str, dtype: str, op: str, value: Any) -> Any:
    """``value`` as the filter stores it, or a ValidationError saying why it cannot be compared."""
    if op == "in":
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, set, frozenset)):
            raise ValidationError(f"isin() on {column!r} takes a list of values, got {value!r}")
        return [_check_value(column, dtype, "==", v) for v in value]
    if op == "like":
        if dtype != "string" or not isinstance(value, str):
            raise ValidationError(
                f"like() needs a string column and a string pattern; {column!r} is {dtype}, got {value!r}"
            )
        return value
    if value is None:
        raise ValidationError(
            f"cannot compare {column!r} with None (SQL comparisons with null match nothing)"
        )
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    ok: bool
    if dtype in _NUMBERS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if dtype.startswith("int") and isinstance(value, float) and value.is_integer():
            value = int(value)
    elif dtype == "bool":
        ok = isinstance(value, bool)
    elif dtype == "string":
        ok = isinstance(value, str)
    elif dtype == "timestamp":
        value = _timestamp(column, value)
        ok = True
    elif dtype == "date":
        ok = isinstance(value, date) and not isinstance(value, datetime)
        if isinstance(value, str):
            try:
                value, ok = date.fromisoformat(value), True
            except ValueError:
                ok = False
    else:
        ok = isinstance(value, bytes)
    if not ok:
        raise ValidationError(
            f"cannot compare {dtype} column {column!r} with {value!r} ({type(value).__name__})"
        )
    return value


def _timestamp(column: str, value: Any) -> datetime:
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        value = value.to_pydatetime()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                f"cannot read {value!r} as a time for {column!r}: use ISO 8601 such as "
                "'2024-01-31T12:00:00+00:00' or a tz-aware datetime"
            ) from None
    if not isinstance(value, datetime):
        raise ValidationError(f"timestamp column {column!r} compares with datetimes, got {value!r}")
    if value.tzinfo is None:
        raise ValidationError(
            f"the time {value.isoformat()} compared with {column!r} has no time zone: give one, "
            "e.g. datetime(..., tzinfo=UTC) or '...+00:00'"
        )
    return value
