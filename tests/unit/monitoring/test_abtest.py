"""The A/B readout's statistics: Wilson intervals and the two-sided tests."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from fti.monitoring.abtest import _test, _wilson


@given(st.integers(1, 10_000), st.data())
def test_the_wilson_interval_holds_the_proportion_inside_0_1(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    low, high = _wilson(k, n)
    assert 0 <= low <= k / n <= high <= 1


def test_two_proportions_against_a_known_value() -> None:
    # 60/100 vs 45/100: pooled 0.525, se = sqrt(.525*.475*.02) = 0.07062, z = 2.124, p = 0.0337
    p = _test(
        {"metric": "accuracy", "n": 100, "k": 60, "value": 0.60},
        {"metric": "accuracy", "n": 100, "k": 45, "value": 0.45},
    )
    assert p is not None and math.isclose(p, 0.0337, abs_tol=5e-4)
    same = _test(
        {"metric": "accuracy", "n": 50, "k": 25, "value": 0.5},
        {"metric": "accuracy", "n": 50, "k": 25, "value": 0.5},
    )
    assert same == 1.0
    # MAE 1.0 (sd 0.5, n 100) vs 1.2 (sd 0.5, n 100): z = 0.2 / 0.0707 = 2.83, p = 0.00468
    mae = _test(
        {"metric": "mae", "n": 100, "sd": 0.5, "value": 1.0},
        {"metric": "mae", "n": 100, "sd": 0.5, "value": 1.2},
    )
    assert mae is not None and math.isclose(mae, 0.00468, abs_tol=1e-4)
    assert (
        _test(
            {"metric": "accuracy", "n": 1, "k": 1, "value": 1.0},
            {"metric": "accuracy", "n": 5, "k": 1, "value": 0.2},
        )
        is None
    )
