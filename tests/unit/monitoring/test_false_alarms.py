"""No false alarms, and real shifts are found: on 500 seeded same-distribution samples each
p-value test rejects at its alpha (within two standard errors); a known shift is detected."""

from __future__ import annotations

import numpy as np
import pytest

from fti.monitoring import drift
from tests.unit.monitoring._data import profile, summary

RUNS = 500
ALPHA = 0.05
SE = np.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def _rejections(test: str, refs: np.ndarray, curs: np.ndarray) -> np.ndarray:
    out = []
    for ref_values, cur_values in zip(refs, curs, strict=True):
        ref = profile(ref_values)
        outcome = drift.run_test(test, ref, summary(ref, cur_values), ALPHA, "test")
        out.append(outcome.drifted)
    return np.array(out)


@pytest.mark.parametrize(
    ("test", "draw"),
    [
        ("ks", lambda rng, n: rng.normal(3.0, 2.0, (RUNS, n))),
        (
            "chi2",
            lambda rng, n: rng.choice(
                np.array(["a", "b", "c", "d"], dtype=object), (RUNS, n), p=[0.4, 0.3, 0.2, 0.1]
            ),
        ),
        ("ztest", lambda rng, n: rng.random((RUNS, n)) < 0.3),
    ],
)
def test_false_positive_rate_is_alpha(test, draw) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2024)
    refs, curs = draw(rng, 120), draw(rng, 80)  # all 1,000 samples drawn at once
    rate = _rejections(test, refs, curs).mean()
    assert ALPHA - 2 * SE <= rate <= ALPHA + 2 * SE, (test, rate)


def test_a_known_shift_is_detected() -> None:
    """Power: a half-standard-deviation mean shift with 200 rows each is found by KS in at least
    90 % of 100 seeded samples (the test's theoretical power there is about 0.98)."""
    rng = np.random.default_rng(7)
    refs, curs = rng.normal(0, 1, (100, 200)), rng.normal(0.5, 1, (100, 200))
    assert _rejections("ks", refs, curs).mean() >= 0.9
    shifted = rng.random((100, 200)) < 0.45  # 30 % -> 45 % positives
    assert _rejections("ztest", rng.random((100, 200)) < 0.3, shifted).mean() >= 0.9


def test_large_reference_distances_separate_shift_from_noise() -> None:
    rng = np.random.default_rng(3)
    ref = profile(rng.normal(0, 1, 20_000))
    same = summary(ref, rng.normal(0, 1, 20_000))
    shifted = summary(ref, rng.normal(0.5, 1, 20_000))
    for test in ("wasserstein", "psi", "jensenshannon"):
        threshold = drift.DEFAULT_THRESHOLDS[test]
        assert not drift.run_test(test, ref, same, threshold, "").drifted
        assert drift.run_test(test, ref, shifted, threshold, "").drifted
