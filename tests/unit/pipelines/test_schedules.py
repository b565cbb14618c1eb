"""Schedule arithmetic as pure functions: cron and intervals in time zones across DST, missed runs."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from fti.errors import ValidationError
from fti.pipelines.schedules import (
    Schedule,
    check_cron,
    check_timezone,
    missed_slots,
    parse_duration,
    plan_fire,
    retry_delay,
    split_window,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fire_times(schedule: Schedule, after: datetime, n: int) -> list[datetime]:
    out, t = [], after
    for _ in range(n):
        t = schedule.next_after(t)
        out.append(t)
    return out


def test_hourly_cron_in_berlin_across_spring_forward() -> None:
    # 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00 UTC); the skipped hour fires once, at 03:00.
    s = Schedule(cron="0 * * * *", timezone="Europe/Berlin")
    times = fire_times(s, utc(2024, 3, 30, 23, 30), 4)
    assert times == [utc(2024, 3, 31, 0), utc(2024, 3, 31, 1), utc(2024, 3, 31, 2), utc(2024, 3, 31, 3)]
    assert len(set(times)) == 4  # 02:00 and 03:00 local both map to 01:00 UTC but fire once
    # windows are contiguous
    for earlier, later in itertools.pairwise(times):
        assert s.window(later) == (earlier, later)


def test_daily_cron_in_skipped_hour_fires_after_the_gap() -> None:
    s = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    times = fire_times(s, utc(2024, 3, 29, 12), 3)
    # 02:30 CET = 01:30 UTC; on the 31st 02:30 does not exist -> 03:00 CEST = 01:00 UTC; then 00:30 UTC
    assert times == [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)]
    start, end = s.window(times[1])
    assert (start, end) == (times[0], times[1])
    assert end - start == timedelta(hours=23, minutes=30)


def test_hourly_cron_in_berlin_across_fall_back() -> None:
    # 2024-10-27: 03:00 CEST falls back to 02:00 CET. 02:00 local occurs twice; it fires once.
    s = Schedule(cron="0 * * * *", timezone="Europe/Berlin")
    times = fire_times(s, utc(2024, 10, 26, 22, 30), 4)
    assert times == [utc(2024, 10, 26, 23), utc(2024, 10, 27, 0), utc(2024, 10, 27, 2), utc(2024, 10, 27, 3)]
    assert s.window(utc(2024, 10, 27, 2)) == (utc(2024, 10, 27, 0), utc(2024, 10, 27, 2))
    # within the repeated hour, the latest fire time is the first 02:00
    assert s.latest_at_or_before(utc(2024, 10, 27, 1, 30)) == utc(2024, 10, 27, 0)


def test_daily_interval_follows_local_midnight_across_dst() -> None:
    s = Schedule(interval=timedelta(days=1), timezone="Europe/Berlin")
    times = fire_times(s, utc(2024, 3, 29, 12), 3)
    assert times == [utc(2024, 3, 29, 23), utc(2024, 3, 30, 23), utc(2024, 3, 31, 22)]
    start, end = s.window(times[2])
    assert end - start == timedelta(hours=23)  # the short day


def test_sub_day_interval_is_anchored_at_the_epoch() -> None:
    s = Schedule(interval=timedelta(minutes=15))
    assert s.next_after(utc(2024, 1, 1, 10, 7)) == utc(2024, 1, 1, 10, 15)
    assert s.next_after(utc(2024, 1, 1, 10, 15)) == utc(2024, 1, 1, 10, 30)
    assert s.latest_at_or_before(utc(2024, 1, 1, 10, 15)) == utc(2024, 1, 1, 10, 15)
    assert s.window(utc(2024, 1, 1, 10, 15)) == (utc(2024, 1, 1, 10), utc(2024, 1, 1, 10, 15))


def test_cron_in_new_york() -> None:
    s = Schedule(cron="0 9 * * 1-5", timezone="America/New_York")
    # Friday 2024-03-08 09:00 EST = 14:00 UTC; next Monday 03-11 is EDT -> 13:00 UTC
    assert fire_times(s, utc(2024, 3, 8, 12), 2) == [utc(2024, 3, 8, 14), utc(2024, 3, 11, 13)]


def test_missed_slots_and_plan_fire_runs_only_the_latest() -> None:
    s = Schedule(cron="0 * * * *")
    cursor = utc(2024, 1, 1, 0, 10)
    now = utc(2024, 1, 1, 5, 0, 20)
    assert missed_slots(s, cursor, now) == [utc(2024, 1, 1, h) for h in range(1, 6)]
    plan = plan_fire(s, cursor, now)
    assert plan.slot == utc(2024, 1, 1, 5)
    assert plan.skipped == [utc(2024, 1, 1, h) for h in range(1, 5)]
    assert plan.cursor == utc(2024, 1, 1, 5)
    # nothing more is due right after
    again = plan_fire(s, plan.cursor, now + timedelta(minutes=5))
    assert again.slot is None and again.cursor == plan.cursor


def test_plan_fire_late_latest_vs_skip() -> None:
    s = Schedule(cron="0 * * * *")
    cursor = utc(2024, 1, 1, 0, 10)
    late = utc(2024, 1, 1, 3, 30)  # 3 fire times missed, the latest 30 minutes ago
    latest = plan_fire(s, cursor, late, missed="latest", grace=timedelta(minutes=1))
    assert latest.slot == utc(2024, 1, 1, 3) and len(latest.skipped) == 2
    skip = plan_fire(s, cursor, late, missed="skip", grace=timedelta(minutes=1))
    assert skip.slot is None and len(skip.skipped) == 3 and skip.cursor == utc(2024, 1, 1, 3)
    # on time: skip still runs it
    on_time = plan_fire(s, cursor, utc(2024, 1, 1, 1, 0, 30), missed="skip")
    assert on_time.slot == utc(2024, 1, 1, 1) and on_time.skipped == []
    with pytest.raises(ValidationError, match="missed-run policy"):
        plan_fire(s, cursor, late, missed="burst")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1.5h", 5400),
        ("45", 45),
        (3, 3),
        ("500ms", 0.5),
    ],
)
def test_parse_duration(value: str | int, seconds: float) -> None:
    assert parse_duration(value).total_seconds() == seconds


@pytest.mark.parametrize("value", ["", "15x", "m15", "-5m", "0", "1h 30", "fifteen", True, None, [1]])
def test_parse_duration_rejects_bad_values(value: object) -> None:
    with pytest.raises(ValidationError, match="invalid timeout"):
        parse_duration(value, "timeout")  # type: ignore[arg-type]


@pytest.mark.parametrize("expr", ["61 * * * *", "* * *", "0 0 * * * *", "every hour", "", None, "0 25 * * *"])
def test_invalid_cron_expressions(expr: object) -> None:
    with pytest.raises(ValidationError, match="cron expression"):
        check_cron(expr)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "UTC+2", None, "../etc/passwd"])
def test_invalid_timezones(tz: object) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        check_timezone(tz)


def test_macros_and_whitespace_are_accepted() -> None:
    assert check_cron("@hourly") == "@hourly"
    assert check_cron(" 0   *  * * * ") == "0 * * * *"


def test_retry_delay_grows_exponentially_with_bounded_jitter() -> None:
    rng = random.Random(7)
    for attempt, base in ((1, 10.0), (2, 20.0), (3, 40.0)):
        delays = [retry_delay(10, attempt, rng=rng) for _ in range(50)]
        assert all(base <= d <= base * 1.25 for d in delays)
        assert len(set(delays)) > 1  # jittered
    with pytest.raises(ValidationError):
        retry_delay(10, 0)


def test_split_window() -> None:
    windows = split_window(utc(2024, 1, 1), utc(2024, 1, 1, 2, 30), timedelta(hours=1))
    assert windows == [
        (utc(2024, 1, 1, 0), utc(2024, 1, 1, 1)),
        (utc(2024, 1, 1, 1), utc(2024, 1, 1, 2)),
        (utc(2024, 1, 1, 2), utc(2024, 1, 1, 2, 30)),
    ]
    with pytest.raises(ValidationError, match="must be after the start"):
        split_window(utc(2024, 1, 2), utc(2024, 1, 1), timedelta(hours=1))
    with pytest.raises(ValidationError, match="10,000"):
        split_window(utc(2024, 1, 1), utc(2025, 1, 1), timedelta(minutes=1))


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        Schedule(cron="0 * * * *").next_after(datetime(2024, 1, 1))


def test_schedule_round_trips_through_dict() -> None:
    for s in (Schedule(cron="5 4 * * *", timezone="Asia/Tokyo"), Schedule(interval=timedelta(hours=6))):
        assert Schedule.from_dict(s.to_dict()) == s
