"""Rollout gates: conditions, and a step's figures from the servers' cumulative counters."""

from __future__ import annotations

import math

import pytest

from fti.errors import ValidationError
from fti.serving.rollouts.gates import Gate, figures, jsonable, parse_gates, snapshot
from fti.serving.rollouts.machine import check_steps, parse_every
from fti.serving.rollouts.records import VariantStats


def _row(server: str, variant: str, requests: int, errors: int, fast: int) -> VariantStats:
    # ``fast`` requests took <= 5 ms, the others <= 100 ms
    return VariantStats(
        server, variant, 2, requests, errors, [["0.005", fast], ["0.1", requests], ["+Inf", requests]]
    )


def test_figures_are_the_counters_since_the_step_started_across_servers() -> None:
    before = [_row("s1", "canary", 100, 1, 100), _row("s1", "champion", 900, 0, 900)]
    now = [
        _row("s1", "canary", 300, 21, 290),  # +200 requests, +20 errors, 10 slow
        _row("s1", "champion", 2000, 0, 2000),
        _row("s2", "canary", 50, 0, 50),  # a server that started during the step counts from zero
    ]
    seen = figures(now, snapshot(before))
    assert seen["canary"]["requests"] == 250 and seen["canary"]["errors"] == 20
    assert seen["canary"]["error_rate"] == pytest.approx(20 / 250)
    assert seen["canary"]["p99_ms"] == pytest.approx(100.0)  # 10 of 250 slow: the 99th is in (5, 100] ms
    assert seen["champion"] == {"requests": 1100, "errors": 0, "error_rate": 0.0, "p99_ms": 5.0}
    assert figures(before, snapshot(before))["canary"]["error_rate"] is None  # no requests in the step
    slow = [VariantStats("s", "canary", 1, 10, 0, [["0.1", 0], ["+Inf", 10]])]
    assert figures(slow, {})["canary"]["p99_ms"] == math.inf
    assert jsonable(figures(slow, {}))["canary"]["p99_ms"] == "+Inf"


def test_gates_absolute_and_relative_to_the_champion() -> None:
    gates = parse_gates({"error_rate": "< 0.01", "p99_ms": "<= champion * 1.2"})
    assert gates == [Gate("error_rate", "<", 0.01), Gate("p99_ms", "<=", 1.2, "*")]
    assert gates[0].judge(0.005, None) is None
    assert gates[0].judge(0.3, None) == "error_rate 0.3 is not < 0.01"
    assert gates[1].judge(11.0, 10.0) is None and gates[1].judge(13.0, 10.0) == "p99_ms 13 is not <= 12"
    assert gates[1].judge(13.0, None) is None  # no champion traffic: nothing to compare with
    assert (
        parse_gates({"error_rate": "<= champion + 0.005"})[0].judge(0.02, 0.01)
        == "error_rate 0.02 is not <= 0.015"
    )
    assert parse_gates({"error_rate": "<=champion"}) == [Gate("error_rate", "<=", 0.0, "+")]


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ({"roc": ">= 0.9"}, "unknown gate 'roc'"),
        ({"error_rate": "0.01"}, "invalid gate"),
        ({"error_rate": "< champion ^ 2"}, "invalid gate"),
        ({"error_rate": 0.01}, "invalid gate"),
        ({"error_rate": "< 1e999"}, "finite"),
        (["error_rate < 0.01"], "must be a dict"),
    ],
)
def test_bad_gates(gates: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_gates(gates)


def test_steps_and_durations() -> None:
    assert check_steps([5, 25, 50, 100]) == [5.0, 25.0, 50.0, 100.0]
    assert parse_every("10m") == 600 and parse_every("30s") == 30 and parse_every(2.5) == 2.5
    for bad in ([], [100, 100], [5, 200], [True, 100], "5,100", None):
        with pytest.raises(ValidationError, match="steps must be"):
            check_steps(bad)
    for bad_every in ("10 minutes", -1, "0s", None, True):
        with pytest.raises(ValidationError, match="every must be"):
            parse_every(bad_every)
