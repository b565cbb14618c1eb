"""Schedule arithmetic as pure functions: fire times, windows, missed runs, durations, backoff.

Nothing here touches the catalog or the clock; the scheduler passes ``now`` in. Every datetime
taken or returned is timezone-aware; returned datetimes are in UTC.

Time zones and daylight-saving time: cron expressions are evaluated on the wall clock of the
schedule's time zone. A wall-clock time skipped by a spring-forward change fires at the first
instant after the gap (``02:30`` in Europe/Berlin on the last Sunday of March fires at ``03:00``
CEST); a wall-clock time that occurs twice at a fall-back change fires once, at its first
occurrence. Consecutive windows are always contiguous, so an incremental pipeline never loses or
double-reads an interval across a change.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fti.errors import ValidationError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_EPOCH_DATE = date(1970, 1, 1)
_MAX_SCAN = 100_000  # upper bound on slots enumerated by ``missed_slots``


def parse_duration(value: str | float | timedelta, what: str = "duration") -> timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"``, a number of seconds or a timedelta.

    Raises:
        ValidationError: an empty, negative, zero or malformed value.
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValidationError(f"invalid {what} {value!r}: use a number of seconds or a string like '15m'")
    elif isinstance(value, int | float):
        result = timedelta(seconds=float(value))
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            result = timedelta(seconds=float(text))
        elif text and _DURATION.sub("", text) == "":
            result = timedelta(
                seconds=sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text)),
            )
        else:
            raise ValidationError(
                f"invalid {what} {value!r}: use a number of seconds or a string like '90s', '15m', "
                "'1h30m' or '2d'"
            )
    else:
        raise ValidationError(f"invalid {what} {value!r}: use a number of seconds or a string like '15m'")
    if result <= timedelta(0):
        raise ValidationError(f"invalid {what} {value!r}: it must be greater than zero")
    return result


def check_timezone(name: object) -> ZoneInfo:
    """The IANA zone ``name`` (``"UTC"``, ``"Europe/Berlin"``); ValidationError if unknown."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"invalid timezone {name!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"unknown timezone {name!r}: use an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'"
        ) from exc


_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day-of-week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_CRON_USAGE = "use 5 fields 'minute hour day-of-month month day-of-week'"


def check_cron(expression: object) -> str:
    """A standard 5-field cron expression (or ``@hourly``-style macro); ValidationError otherwise,
    naming the field and its range (``minute 61 is out of range 0-59``)."""
    from croniter import croniter

    if not isinstance(expression, str) or not expression.strip():
        raise ValidationError(f"invalid cron expression {expression!r}: {_CRON_USAGE}, e.g. '0 * * * *'")
    expr = " ".join(expression.split())
    fields = expr.split(" ")
    if not expr.startswith("@"):
        if len(fields) != 5:
            raise ValidationError(f"invalid cron expression {expression!r}: {_CRON_USAGE}, got {len(fields)}")
        for text, spec in zip(fields, _CRON_FIELDS, strict=True):
            problem = _cron_field_problem(text, *spec)
            if problem is not None:
                raise ValidationError(f"invalid cron expression {expression!r}: {problem}")
    if not croniter.is_valid(expr):
        raise ValidationError(
            f"invalid cron expression {expression!r}: {_CRON_USAGE}, e.g. '0 * * * *' (hourly) or "
            "'30 2 * * 1' (Mondays 02:30)"
        )
    return expr


def _cron_field_problem(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    """What is wrong with one cron field, or None (croniter judges its extensions: L, W, #, ?)."""
    if any(mark in text.upper() for mark in ("L", "W", "#", "?")) and not any(
        n in text.lower() for n in names
    ):
        return None

    def value(token: str) -> int | str:
        lowered = token.lower()
        if lowered in names:
            return names.index(lowered) + (1 if name == "month" else 0)
        if not token.isdigit():
            return f"{name} {token!r} is not a number, range, list or step"
        number = int(token)
        if not low <= number <= high:
            return f"{name} {number} is out of range {low}-{high}"
        return number

    for item in text.split(","):
        base, slash, step = item.partition("/")
        if slash:
            if not step.isdigit():
                return f"{name} step {step!r} is not a number"
            if int(step) < 1:
                return f"{name} step {step} must be at least 1"
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        start = value(first)
        if isinstance(start, str):
            return start
        if dash:
            end = value(last)
            if isinstance(end, str):
                return end
            if end < start:
                return f"{name} range {base} is backwards: write the smaller value first"
    return None


@dataclass(frozen=True)
class Schedule:
    """A cron expression or a fixed interval, evaluated in ``timezone``.

    Exactly one of ``cron`` and ``interval`` is set. Intervals that are whole days fire at local
    midnight every ``N`` days (counted from 1970-01-01); other intervals fire at multiples of the
    interval since the Unix epoch.
    """

    cron: str | None = None
    interval: timedelta | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval is None):
            raise ValidationError("a schedule needs exactly one of a cron expression and an interval")
        if self.cron is not None:
            object.__setattr__(self, "cron", check_cron(self.cron))
        if self.interval is not None and self.interval <= timedelta(0):
            raise ValidationError(f"invalid interval {self.interval}: it must be greater than zero")
        check_timezone(self.timezone)

    @property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def _whole_days(self) -> int | None:
        if self.interval is None or self.interval % timedelta(days=1):
            return None
        return self.interval // timedelta(days=1)

    def describe(self) -> str:
        """``"cron 0 * * * * (UTC)"`` or ``"every 1:00:00 (UTC)"``."""
        what = f"cron {self.cron}" if self.cron is not None else f"every {self.interval}"
        return f"{what} ({self.timezone})"

    def to_dict(self) -> dict[str, object]:
        if self.cron is not None:
            return {"cron": self.cron, "timezone": self.timezone}
        assert self.interval is not None
        return {"every_seconds": self.interval.total_seconds(), "timezone": self.timezone}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Schedule:
        tz = str(data.get("timezone", "UTC"))
        if data.get("cron") is not None:
            return cls(cron=str(data["cron"]), timezone=tz)
        return cls(interval=timedelta(seconds=float(data["every_seconds"])), timezone=tz)  # type: ignore[arg-type]

    def next_after(self, t: datetime) -> datetime:
        """The first fire time strictly after ``t``."""
        _check_aware(t)
        if self.cron is not None:
            return self._cron_step(t, forward=True)
        days = self._whole_days
        if days is not None:
            local = t.astimezone(self._zone).date()
            n = (local - _EPOCH_DATE).days // days
            while True:
                candidate = self._local_midnight(_EPOCH_DATE + timedelta(days=n * days))
                if candidate > t:
                    return candidate
                n += 1
        assert self.interval is not None
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        n = (t.astimezone(UTC) - epoch) // self.interval + 1
        return epoch + n * self.interval

    def latest_at_or_before(self, t: datetime) -> datetime:
        """The last fire time at or before ``t``."""
        _check_aware(t)
        if self.cron is not None:
            return self._cron_step(t, forward=False)
        days = self._whole_days
        if days is not None:
            local = t.astimezone(self._zone).date()
            n = (local - _EPOCH_DATE).days // days + 1
            while True:
                candidate = self._local_midnight(_EPOCH_DATE + timedelta(days=n * days))
                if candidate <= t:
                    return candidate
                n -= 1
        assert self.interval is not None
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        n = (t.astimezone(UTC) - epoch) // self.interval
        return epoch + n * self.interval

    def previous_before(self, t: datetime) -> datetime:
        """The last fire time strictly before ``t``."""
        return self.latest_at_or_before(t - timedelta(microseconds=1))

    def window(self, slot: datetime) -> tuple[datetime, datetime]:
        """The window that just closed at fire time ``slot``: ``[previous fire time, slot)``."""
        return self.previous_before(slot), slot

    def _local_midnight(self, day: date) -> datetime:
        naive = datetime(day.year, day.month, day.day)
        return _resolve_local(naive, self._zone)

    def _cron_step(self, t: datetime, *, forward: bool) -> datetime:
        from croniter import croniter

        assert self.cron is not None
        zone = self._zone
        # Iterate cron on naive wall-clock times, then map each to an instant; see module docstring.
        local = t.astimezone(zone).replace(tzinfo=None, fold=0)
        start = local if forward else local + timedelta(microseconds=1)
        it = croniter(self.cron, start)
        for _ in range(_MAX_SCAN):
            naive = it.get_next(datetime) if forward else it.get_prev(datetime)
            instant = _resolve_local(naive, zone)
            if (forward and instant > t) or (not forward and instant <= t):
                return instant
        raise ValidationError(f"cron expression {self.cron!r} never fires near {t.isoformat()}")


def _resolve_local(naive: datetime, zone: ZoneInfo) -> datetime:
    """Map a wall-clock time to an instant: first occurrence if ambiguous, after the gap if skipped."""
    aware = naive.replace(tzinfo=zone, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != naive:
        # Non-existent local time (spring forward): the first instant after the gap.
        after_gap = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
        transition = min(utc, after_gap)
        return _gap_end(transition, naive, zone)
    return utc


def _gap_end(guess: datetime, naive: datetime, zone: ZoneInfo) -> datetime:
    # The gap ends at the transition instant: the first UTC minute whose wall clock is past ``naive``.
    t = guess.replace(second=0, microsecond=0)
    for _ in range(24 * 60):
        if t.astimezone(zone).replace(tzinfo=None) > naive:
            return t
        t += timedelta(minutes=1)
    return guess


def _check_aware(t: datetime) -> None:
    if not isinstance(t, datetime) or t.tzinfo is None:
        raise ValidationError(f"expected a timezone-aware datetime, got {t!r}")


def missed_slots(schedule: Schedule, after: datetime, now: datetime) -> list[datetime]:
    """Every fire time in ``(after, now]``, oldest first (capped at 100,000)."""
    slots: list[datetime] = []
    t = after
    while len(slots) < _MAX_SCAN:
        t = schedule.next_after(t)
        if t > now:
            break
        slots.append(t)
    return slots


@dataclass(frozen=True)
class FirePlan:
    """What the scheduler should do for one schedule at ``now``.

    Attributes:
        slot: The fire time to run now, or None.
        skipped: Fire times passed over (missed during downtime or by policy).
        cursor: The new "considered up to" time to store (the last due fire time, or unchanged).
    """

    slot: datetime | None
    skipped: list[datetime]
    cursor: datetime


def plan_fire(
    schedule: Schedule,
    cursor: datetime,
    now: datetime,
    *,
    missed: str = "latest",
    grace: timedelta = timedelta(minutes=1),
) -> FirePlan:
    """Decide which fire time, if any, runs now. Never more than one: no bursts after downtime.

    A fire time is on time when ``now`` is at most ``grace`` past it. Older due fire times are
    missed. With ``missed="latest"`` the latest due fire time runs (on time or not); with
    ``missed="skip"`` it runs only when on time.

    Args:
        schedule: The schedule.
        cursor: Fire times at or before this have been handled already.
        now: The current time.
        missed: ``"latest"`` or ``"skip"``.
        grace: How late a fire time may run and still count as on time.
    """
    if missed not in ("latest", "skip"):
        raise ValidationError(f"invalid missed-run policy {missed!r}: use 'latest' or 'skip'")
    first = schedule.next_after(cursor)
    if first > now:
        return FirePlan(None, [], cursor)
    latest = schedule.latest_at_or_before(now)
    older = missed_slots(schedule, cursor, schedule.previous_before(latest)) if first < latest else []
    if missed == "skip" and now - latest > grace:
        return FirePlan(None, [*older, latest], latest)
    return FirePlan(latest, older, latest)


def retry_delay(
    base: float, attempt: int, *, jitter: float = 0.25, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retrying after failed ``attempt`` (1-based).

    Exponential backoff ``base * 2**(attempt-1)``, stretched by a random factor in
    ``[1, 1 + jitter]`` so retries of many pipelines do not line up.
    """
    if attempt < 1:
        raise ValidationError(f"attempt must be >= 1, got {attempt}")
    factor = 1.0 + (rng or random).uniform(0.0, jitter)
    return float(base) * 2.0 ** (attempt - 1) * factor


def split_window(start: datetime, end: datetime, step: timedelta) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive windows of ``step`` (the last may be shorter)."""
    _check_aware(start)
    _check_aware(end)
    if end <= start:
        raise ValidationError(
            f"the end {end.isoformat()} must be after the start {start.isoformat()}: swap them or fix the dates"
        )
    if step <= timedelta(0):
        raise ValidationError(f"invalid step {step}: it must be greater than zero")
    windows = []
    t = start
    while t < end:
        windows.append((t, min(t + step, end)))
        t += step
        if len(windows) > 10_000:
            raise ValidationError(
                f"{start.isoformat()}..{end.isoformat()} in steps of {step} is more than 10,000 runs; use a larger --step"
            )
    return windows
