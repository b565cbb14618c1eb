"""Window declarations, and the incremental aggregation against the batch computation (DuckDB)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
from fti import window as W
from fti.streaming.aggregator import Aggregator, Event

MIN = 60_000_000
HOUR = 60 * MIN
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in microseconds
AGGS = [W.count(), W.sum("v"), W.mean("v"), W.min("v"), W.max("v")]


def ev(i: int, key: int, minutes: float, v: float) -> Event:
    return Event(f"{i}", (key,), T0 + int(minutes * MIN), (v,))


def run(
    windows: list[W.Window], events: list[Event], batch: int = 1000, lateness: int = 0
) -> dict[Any, list[Any]]:
    agg = Aggregator(windows, AGGS, allowed_lateness_us=lateness)
    rows: dict[Any, list[Any]] = {}
    for start in range(0, len(events), batch):
        rows.update(agg.apply(events[start : start + batch]).rows)
    return rows


def at(minutes: float) -> int:
    return T0 + int(minutes * MIN)


# --- declarations ---------------------------------------------------------------------------------
def test_declarations_name_their_columns() -> None:
    assert (
        W.sliding("1h").name == "1h" and W.sliding("90m").name == "90m" and W.sliding("1h30m").name == "90m"
    )
    assert W.sliding(timedelta(days=7)).name == "7d" and W.tumbling("1d").every_us == 86_400_000_000
    assert W.hopping("1h", every="15m", name="hour").name == "hour"
    assert W.sum("amount").name == "amount_sum" and W.count().name == "count"
    assert str(W.hopping("1h", "15m")) == "hopping(1h, every=15m)" and str(W.tumbling("1d")) == "tumbling(1d)"
    agg = Aggregator(
        [W.sliding("1h"), W.sliding("1d")],
        [W.count(name="tx_count"), W.mean("amount")],
        allowed_lateness_us=0,
    )
    assert agg.output_columns == ("tx_count_1h", "amount_mean_1h", "tx_count_1d", "amount_mean_1d")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: W.sliding("1 hour"), "invalid window size"),
        (lambda: W.sliding("0s"), "longer than zero"),
        (lambda: W.hopping("15m", every="1h"), "longer than its size"),
        (lambda: W.sliding("1h", name="a-b"), "invalid window name"),
        (lambda: W.sum(""), "numeric column"),
        (lambda: W.check([W.sliding("1h"), W.tumbling("1h")], [W.count()]), "all sliding, or all hopping"),
        (lambda: W.check([W.hopping("1h", "5m"), W.hopping("2h", "10m")], [W.count()]), "share their every"),
        (lambda: W.check([W.sliding("1h"), W.sliding("60m")], [W.count()]), "named alike"),
        (
            lambda: W.check([W.sliding("1h")], [W.sum("a", name="x"), W.mean("b", name="x")]),
            "same column twice",
        ),
        (lambda: W.check([], [W.count()]), "non-empty list"),
        (lambda: W.check([W.sliding("1h")], "count"), "aggregations must be"),
    ],
)
def test_bad_declarations_say_what_is_wrong(make: Any, message: str) -> None:
    with pytest.raises(fti.ValidationError, match=message):
        make()


# --- hand-checked rows ----------------------------------------------------------------------------
def test_sliding_windows_include_both_ends_and_update_later_rows_for_a_late_event() -> None:
    events = [ev(1, 1, 0, 1.0), ev(2, 1, 30, 2.0), ev(3, 1, 60, 4.0), ev(4, 1, 61, 8.0)]
    rows = run([W.sliding("1h")], events, batch=1)
    assert rows[((1,), at(60))] == [3, 7.0, 7 / 3, 1.0, 4.0]  # [00:00, 01:00]: the 00:00 event counts
    assert rows[((1,), at(61))] == [3, 14.0, 14 / 3, 2.0, 8.0]
    agg = Aggregator([W.sliding("1h")], AGGS, allowed_lateness_us=HOUR)
    agg.apply(events)
    late = agg.apply([ev(5, 1, 45, 16.0)])  # changes its own row and the rows at 01:00 and 01:01
    assert sorted(r for _, r in late.rows) == [at(45), at(60), at(61)]
    assert late.rows[((1,), at(61))] == [4, 30.0, 7.5, 2.0, 16.0]


def test_sliding_with_every_adds_expiry_rows_so_values_decay() -> None:
    rows = run([W.sliding("1h", every="15m")], [ev(1, 1, 10, 1.0), ev(2, 1, 20, 2.0), ev(3, 2, 200, 5.0)])
    key1 = {r: v for (k, r), v in rows.items() if k == (1,)}
    # 00:10 leaves the window after 01:10 -> a row at 01:15; 00:20 after 01:20 -> a row at 01:30
    assert key1 == {
        at(10): [1, 1.0, 1.0, 1.0, 1.0],
        at(20): [2, 3.0, 1.5, 1.0, 2.0],
        at(75): [1, 2.0, 2.0, 2.0, 2.0],
        at(90): [0, None, None, None, None],
    }


def test_hopping_windows_are_emitted_when_they_close() -> None:
    agg = Aggregator([W.hopping("30m", every="15m")], AGGS, allowed_lateness_us=0)
    first = agg.apply([ev(1, 1, 5, 1.0), ev(2, 1, 20, 2.0)])
    assert sorted(r for _, r in first.rows) == [at(15)]  # [-15, 15) closed at the watermark 00:20
    assert first.rows[((1,), at(15))] == [1, 1.0, 1.0, 1.0, 1.0]
    second = agg.apply([ev(3, 2, 50, 4.0)])  # the watermark moves to 00:50 for every key
    assert second.rows == {  # key 1's windows closed meanwhile; key 2's first one ends at 01:00
        ((1,), at(30)): [2, 3.0, 1.5, 1.0, 2.0],
        ((1,), at(45)): [1, 2.0, 2.0, 2.0, 2.0],
    }
    third = agg.apply([ev(4, 2, 75, 8.0)])
    assert third.rows == {((2,), at(60)): [1, 4.0, 4.0, 4.0, 4.0], ((2,), at(75)): [1, 4.0, 4.0, 4.0, 4.0]}


def test_tumbling_windows() -> None:
    rows = run(
        [W.tumbling("1h")], [ev(1, 1, 10, 1.0), ev(2, 1, 59, 2.0), ev(3, 1, 60, 4.0), ev(4, 1, 130, 8.0)]
    )
    assert rows == {((1,), at(60)): [2, 3.0, 1.5, 1.0, 2.0], ((1,), at(120)): [1, 4.0, 4.0, 4.0, 4.0]}


def test_duplicates_late_events_and_eviction() -> None:
    agg = Aggregator([W.sliding("1h")], AGGS, allowed_lateness_us=10 * MIN)
    agg.apply([ev(1, 1, 0, 1.0), ev(2, 1, 100, 1.0)])
    again = agg.apply([ev(1, 1, 0, 1.0), ev(2, 1, 100, 1.0), ev(3, 1, 89, 1.0), ev(4, 1, 95, 1.0)])
    assert again.duplicates == 1  # event 2 is held: recognised by its id
    # event 1 was evicted (no window reaches it any more): redelivered, it is too late, never
    # counted twice; 89 < 100 - 10 is too late too
    assert [e.id for e in again.late] == ["1", "3"]
    assert [e.id for e in again.accepted] == ["4"]
    for i in range(5, 500):  # a long stream keeps only the events windows can still reach
        agg.apply([ev(i, i % 3, 100 + i, 1.0)])
    assert agg.events <= 3 * 90


# --- the incremental computation equals the batch one ---------------------------------------------
WINDOW_SETS = [
    [W.sliding("1h"), W.sliding("3h")],
    [W.sliding("1h", every="10m"), W.sliding("2h", every="10m")],
    [W.hopping("1h", every="15m"), W.hopping("2h", every="15m")],
    [W.tumbling("30m")],
]


def batch_rows(
    windows: list[W.Window], events: list[Event], until: int | None = None
) -> dict[Any, list[Any]]:
    table = pa.table(
        {
            "k": [e.key[0] for e in events],
            "ts": pa.array([e.t for e in events], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "v": [e.values[0] for e in events],
        }
    )
    agg = Aggregator(windows, AGGS, allowed_lateness_us=0)
    result = W.compute(table, key="k", event_time="ts", windows=windows, aggregations=AGGS, until=until)
    out = {}
    for row in result.to_pylist():
        r = (row["ts"] - EPOCH) // timedelta(microseconds=1)
        out[((row["k"],), r)] = [row[c] for c in agg.output_columns]
    return out


def same(a: dict[Any, list[Any]], b: dict[Any, list[Any]]) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        for x, y in zip(a[key], b[key], strict=True):
            if (x is None) != (y is None) or (x is not None and abs(x - y) > 1e-9 * max(1.0, abs(y))):
                return False
    return True


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Event], int, int]:
    n = draw(st.integers(1, 60))
    disorder = draw(st.sampled_from([0, 5, 40]))
    times = sorted(draw(st.lists(st.integers(0, 600), min_size=n, max_size=n)))
    shuffled = [t + draw(st.integers(-disorder, 0)) if disorder else t for t in times]
    keys = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    values = draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n))
    events = [ev(i, k, t, float(v)) for i, (k, t, v) in enumerate(zip(keys, shuffled, values, strict=True))]
    return events, disorder * MIN, draw(st.integers(1, 25))


@pytest.mark.parametrize(
    "windows", WINDOW_SETS, ids=lambda ws: ws[0].kind + ("-every" if ws[0].every_us else "")
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=streams())
def test_incremental_rows_equal_the_batch_computation(
    windows: list[W.Window], stream: tuple[list[Event], int, int]
) -> None:
    events, lateness, batch = stream
    agg = Aggregator(windows, AGGS, allowed_lateness_us=lateness)
    rows: dict[Any, list[Any]] = {}
    for start in range(0, len(events), batch):
        applied = agg.apply(events[start : start + batch])
        assert not applied.late  # disorder <= allowed lateness: nothing is dropped
        rows.update(applied.rows)
    assert same(rows, batch_rows(windows, events))


@pytest.mark.parametrize("windows", WINDOW_SETS[:3], ids=["sliding", "sliding-every", "hopping"])
@settings(max_examples=40, deadline=None)
@given(stream=streams(), split=st.floats(0, 1), replays=st.integers(0, 3))
def test_a_restart_from_the_checkpoint_changes_nothing(
    windows: list[W.Window], stream: tuple[list[Event], int, int], split: float, replays: int
) -> None:
    """Stop anywhere, restore from the accepted events and the watermark, redeliver some of the
    last batch (at-least-once) and continue: the rows are those of an uninterrupted run."""
    events, lateness, batch = stream
    cut = int(len(events) * split)
    first = Aggregator(windows, AGGS, allowed_lateness_us=lateness)
    rows: dict[Any, list[Any]] = {}
    accepted: list[Event] = []
    for start in range(0, cut, batch):
        applied = first.apply(events[start : min(start + batch, cut)])
        rows.update(applied.rows)
        accepted.extend(applied.accepted)
    second = Aggregator(windows, AGGS, allowed_lateness_us=lateness)
    second.restore(accepted, first.watermark)
    redelivered = events[max(0, cut - replays) : cut]  # acknowledged after the checkpoint: seen again
    rest = redelivered + events[cut:]
    for start in range(0, len(rest), batch):
        applied = second.apply(rest[start : start + batch])
        rows.update(applied.rows)
    assert same(rows, batch_rows(windows, events))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_events_later_than_the_allowed_lateness_are_dropped_and_the_rest_equals_batch(seed: int) -> None:
    rng = random.Random(seed)
    events = [ev(i, rng.randint(1, 3), rng.uniform(0, 300), float(rng.randint(1, 9))) for i in range(80)]
    windows = [W.sliding("30m"), W.sliding("1h")]
    agg = Aggregator(windows, AGGS, allowed_lateness_us=10 * MIN)
    rows: dict[Any, list[Any]] = {}
    accepted: list[Event] = []
    for start in range(0, len(events), 7):
        applied = agg.apply(events[start : start + 7])
        rows.update(applied.rows)
        accepted.extend(applied.accepted)
        assert all(e.t < agg.watermark - 10 * MIN for e in applied.late)  # type: ignore[operator]
    assert len(accepted) < len(events)  # the random order makes some too late
    assert same(rows, batch_rows(windows, accepted))
