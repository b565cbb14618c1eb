"""Windows and aggregations of stream feature pipelines: ``fti.window.sliding("1h")``, ``fti.window.sum("amount")``.

Three kinds of windows, keyed by the pipeline's key and measured on event time (microseconds):

- :func:`sliding` ``(size)``: one row per event (per key and event time): the aggregates of the
  key's events in ``[t - size, t]``, both ends included (SQL's ``RANGE BETWEEN size PRECEDING
  AND CURRENT ROW``). With ``every=``, the key also gets a row at each multiple of ``every``
  (since the Unix epoch) right after an event left one of its windows, so an online value decays
  when the key goes quiet (a card's 1-hour count drops to 0 within ``every`` of its last hour).
- :func:`hopping` ``(size, every)``: windows ``[end - size, end)`` ending at every multiple of
  ``every``, one row per key and window end that holds an event, emitted when the window closes
  (the watermark reaches its end).
- :func:`tumbling` ``(size)``: hopping windows with ``every == size``.

Output columns are named ``<aggregation>_<window>``: ``fti.window.sum("amount")`` over
``fti.window.sliding("1h")`` is ``amount_sum_1h``; pass ``name=`` to either to choose.
This module only declares; :mod:`fti.streaming.aggregator` computes incrementally and
:func:`compute` computes the same rows in one DuckDB query (backfills, tests).
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

KINDS = ("sliding", "hopping", "tumbling")
FUNCTIONS = ("count", "sum", "mean", "min", "max")
_UNITS_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_PART = re.compile(r"(\d+)(us|ms|s|m|h|d)")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SUFFIX = re.compile(r"^[A-Za-z0-9_]{1,63}$")


def duration_us(value: str | timedelta, what: str) -> int:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"7d"``, ``"1us"`` or a timedelta as whole microseconds (> 0)."""
    if isinstance(value, timedelta):
        micros = value // timedelta(microseconds=1)
    elif isinstance(value, str) and value and _PART.sub("", value.strip().lower()) == "":
        micros = builtins.sum(int(n) * _UNITS_US[u] for n, u in _PART.findall(value.strip().lower()))
    else:
        raise ValidationError(
            f"invalid {what} {value!r}: use a string like '30s', '15m', '1h', '7d' (or '1h30m') or a timedelta"
        )
    if micros <= 0:
        raise ValidationError(f"invalid {what} {value!r}: it must be longer than zero")
    return int(micros)


def label(micros: int) -> str:
    """The shortest exact label of a duration: ``3_600_000_000`` -> ``"1h"``."""
    for unit in ("d", "h", "m", "s", "ms", "us"):
        if micros % _UNITS_US[unit] == 0:
            return f"{micros // _UNITS_US[unit]}{unit}"
    raise AssertionError("unreachable: every duration is a whole number of microseconds")


def _check_name(name: str, what: str) -> str:
    pattern, rule = (
        (_SUFFIX, "letters, digits and '_'")
        if what == "window"
        else (_NAME, "letters, digits and '_', not starting with a digit")
    )
    if not isinstance(name, str) or not pattern.match(name):
        raise ValidationError(f"invalid {what} name {name!r}: use 1-63 {rule}")
    return name


@dataclass(frozen=True)
class Window:
    """A window declaration (see the module docstring)."""

    kind: str
    size_us: int
    every_us: int | None
    name: str

    @property
    def size(self) -> timedelta:
        return timedelta(microseconds=self.size_us)

    @property
    def every(self) -> timedelta | None:
        return None if self.every_us is None else timedelta(microseconds=self.every_us)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "size": label(self.size_us),
            "every": None if self.every_us is None else label(self.every_us),
            "name": self.name,
        }

    def __str__(self) -> str:
        every = "" if self.every_us is None or self.kind == "tumbling" else f", every={label(self.every_us)}"
        return f"{self.kind}({label(self.size_us)}{every})"


def sliding(
    size: str | timedelta, every: str | timedelta | None = None, *, name: str | None = None
) -> Window:
    """Per-event windows ``[t - size, t]``; with ``every``, also a row where an event expires."""
    size_us = duration_us(size, "window size")
    every_us = None if every is None else duration_us(every, "window every")
    return Window("sliding", size_us, every_us, _check_name(name or label(size_us), "window"))


def hopping(size: str | timedelta, every: str | timedelta, *, name: str | None = None) -> Window:
    """Windows ``[end - size, end)`` at every multiple ``end`` of ``every``; ``every <= size``."""
    size_us, every_us = duration_us(size, "window size"), duration_us(every, "window every")
    if every_us > size_us:
        raise ValidationError(
            f"hopping window every={label(every_us)} is longer than its size {label(size_us)}: events "
            "between windows would be lost; use every <= size (every == size is a tumbling window)"
        )
    return Window("hopping", size_us, every_us, _check_name(name or label(size_us), "window"))


def tumbling(size: str | timedelta, *, name: str | None = None) -> Window:
    """Back-to-back windows ``[end - size, end)`` at every multiple of ``size``."""
    size_us = duration_us(size, "window size")
    return Window("tumbling", size_us, size_us, _check_name(name or label(size_us), "window"))


@dataclass(frozen=True)
class Aggregation:
    """An aggregation declaration: ``function`` of ``column`` (None for :func:`count`)."""

    function: str
    column: str | None
    name: str

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, "column": self.column, "name": self.name}


def count(*, name: str = "count") -> Aggregation:
    """The number of events in the window (0 for an empty one)."""
    return Aggregation("count", None, _check_name(name, "aggregation"))


def _of(function: str, column: str, name: str | None) -> Aggregation:
    if not isinstance(column, str) or not column:
        raise ValidationError(f"{function}() takes the name of a numeric column, got {column!r}")
    return Aggregation(function, column, _check_name(name or f"{column}_{function}", "aggregation"))


def sum(column: str, *, name: str | None = None) -> Aggregation:
    """The sum of ``column`` in the window (null for an empty one)."""
    return _of("sum", column, name)


def mean(column: str, *, name: str | None = None) -> Aggregation:
    """The mean of ``column`` in the window (null for an empty one)."""
    return _of("mean", column, name)


def min(column: str, *, name: str | None = None) -> Aggregation:
    """The smallest value of ``column`` in the window (null for an empty one)."""
    return _of("min", column, name)


def max(column: str, *, name: str | None = None) -> Aggregation:
    """The largest value of ``column`` in the window (null for an empty one)."""
    return _of("max", column, name)


def check(windows: Any, aggregations: Any) -> tuple[tuple[Window, ...], tuple[Aggregation, ...]]:
    """Validate the windows and aggregations of one pipeline (their output names must not clash)."""
    if isinstance(windows, Window):
        windows = [windows]
    if (
        not isinstance(windows, list | tuple)
        or not windows
        or not all(isinstance(w, Window) for w in windows)
    ):
        raise ValidationError("windows must be a non-empty list like [fti.window.sliding('1h'), ...]")
    if isinstance(aggregations, Aggregation):
        aggregations = [aggregations]
    if (
        not isinstance(aggregations, list | tuple)
        or not aggregations
        or not all(isinstance(a, Aggregation) for a in aggregations)
    ):
        raise ValidationError(
            "aggregations must be a non-empty list like [fti.window.count(), fti.window.sum('amount')]"
        )
    kinds = {"tumbling" if w.kind == "hopping" else w.kind for w in windows}
    if len(kinds) > 1:
        raise ValidationError(
            "one pipeline's windows are all sliding, or all hopping/tumbling (their rows are keyed "
            "by event time and by window end respectively): declare two pipelines"
        )
    if kinds == {"tumbling"} and len({w.every_us for w in windows}) > 1:
        raise ValidationError(
            "hopping and tumbling windows of one pipeline must share their every= (their rows are "
            f"the window ends on one grid), got {', '.join(str(w) for w in windows)}"
        )
    if kinds == {"sliding"} and len({w.every_us for w in windows}) > 1:
        raise ValidationError(
            "the sliding windows of one pipeline must share their every= (or all leave it out)"
        )
    names = [w.name for w in windows]
    if len(set(names)) != len(names):
        raise ValidationError(f"two windows are named alike ({names}): give one of them name=...")
    outputs = [f"{a.name}_{w.name}" for w in windows for a in aggregations]
    if len(set(outputs)) != len(outputs):
        raise ValidationError(f"aggregations produce the same column twice ({outputs}): give one name=...")
    return tuple(windows), tuple(aggregations)


def compute(
    events: pa.Table,
    *,
    key: str | list[str],
    event_time: str,
    windows: list[Window],
    aggregations: list[Aggregation],
    until: Any = None,
) -> pa.Table:
    """The rows a stream pipeline with these windows writes for ``events``, computed in batch
    (DuckDB): for backfills, and as the reference the incremental computation is tested against.

    ``until`` is the watermark (default: the latest event time): hopping windows ending later,
    and sliding expiry rows after it, are not emitted yet.
    """
    from fti.streaming.batch import compute_windows

    keys = [key] if isinstance(key, str) else list(key)
    checked_windows, checked_aggregations = check(windows, aggregations)
    return compute_windows(events, keys, event_time, checked_windows, checked_aggregations, until=until)
