"""Drift statistics against scipy and hand computations on fixed data, the Evidently choice of
tests, and the data-quality checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from fti.errors import ValidationError
from fti.monitoring import drift
from fti.monitoring.profiles import EXACT_LIMIT
from tests.unit.monitoring._data import profile, summary

RNG = np.random.default_rng(42)
SMALL_REF = RNG.normal(0, 1, 800)
SMALL_CUR = RNG.normal(0.2, 1.1, 600)
BIG_REF = RNG.normal(0, 1, 60_000)
BIG_CUR = RNG.normal(0.1, 1.2, 40_000)


def _deciles(ref: np.ndarray) -> np.ndarray:
    return np.unique(np.quantile(ref, np.arange(1, 10) / 10, method="inverted_cdf"))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares in the right-closed bins (-inf, e0], (e0, e1], ..., (e_last, inf), by hand."""
    bounds = [-np.inf, *edges, np.inf]
    return np.array([np.mean((values > lo) & (values <= hi)) for lo, hi in itertools.pairwise(bounds)])


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = np.where(ref == 0, 1e-4, ref), np.where(cur == 0, 1e-4, cur)
    return float(sum((c - r) * np.log(c / r) for r, c in zip(ref, cur, strict=True)))


def test_small_samples_are_exact_against_scipy() -> None:
    ref = profile(SMALL_REF)
    cur = summary(ref, SMALL_CUR)
    expected = stats.ks_2samp(SMALL_REF, SMALL_CUR)
    assert drift.ks_numeric(ref, cur) == (expected.statistic, expected.pvalue)
    w, _ = drift.wasserstein_numeric(ref, cur)
    assert w == pytest.approx(stats.wasserstein_distance(SMALL_REF, SMALL_CUR) / np.std(SMALL_REF), rel=1e-12)
    edges = _deciles(SMALL_REF)
    ref_shares, cur_shares = _shares(SMALL_REF, edges), _shares(SMALL_CUR, edges)
    assert drift.psi_numeric(ref, cur)[0] == pytest.approx(_psi(ref_shares, cur_shares), rel=1e-9)
    assert drift.js_numeric(ref, cur)[0] == pytest.approx(
        distance.jensenshannon(ref_shares, cur_shares), rel=1e-9
    )


def test_large_samples_on_the_grid_stay_close_to_scipy() -> None:
    ref = profile(BIG_REF)
    cur = summary(ref, BIG_CUR)
    assert ref.values is None and cur.values is None  # the sketch path
    expected = stats.ks_2samp(BIG_REF, BIG_CUR, method="asymp")
    d, p = drift.ks_numeric(ref, cur)
    assert expected.statistic - 1.5 / 1000 <= d <= expected.statistic + 1e-12  # at most one bin below
    assert p == pytest.approx(stats.kstwo.sf(d, round(60_000 * 40_000 / 100_000)))
    w, _ = drift.wasserstein_numeric(ref, cur)
    exact = stats.wasserstein_distance(BIG_REF, BIG_CUR) / np.std(BIG_REF)
    assert w == pytest.approx(exact, rel=0.01)
    edges = _deciles(BIG_REF)
    assert drift.psi_numeric(ref, cur)[0] == pytest.approx(
        _psi(_shares(BIG_REF, edges), _shares(BIG_CUR, edges)), rel=1e-9
    )


def test_ks_is_exact_on_a_grid_of_all_reference_values() -> None:
    """A large reference with few distinct values keeps them all as edges: D is exact."""
    ref_values = RNG.integers(0, 40, 30_000).astype(float)
    cur_values = RNG.integers(3, 45, 25_000).astype(float)
    ref = profile(ref_values)
    cur = summary(ref, cur_values)
    assert cur.values is None and len(ref.edges) == 40  # type: ignore[arg-type]
    d, _ = drift.ks_numeric(ref, cur)
    assert d == pytest.approx(stats.ks_2samp(ref_values, cur_values).statistic, abs=1e-12)


def test_categorical_statistics_against_scipy_and_by_hand() -> None:
    ref_values = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur_values = ["a"] * 30 + ["b"] * 30 + ["c"] * 25 + ["d"] * 15
    ref = profile(np.array(ref_values, dtype=object))
    cur = summary(ref, np.array(cur_values, dtype=object))
    table = np.array([[50, 30, 20, 0], [30, 30, 25, 15]])
    expected = stats.chi2_contingency(table, correction=False)
    assert drift.chi2_categorical(ref, cur) == pytest.approx((expected.statistic, expected.pvalue))
    r, c = table[0] / 100, table[1] / 100
    assert drift.psi_categorical(ref, cur)[0] == pytest.approx(_psi(r, c))
    assert drift.js_categorical(ref, cur)[0] == pytest.approx(distance.jensenshannon(r, c))


def test_two_proportion_z_test_by_hand() -> None:
    ref = profile(np.array([True] * 30 + [False] * 70))
    cur = summary(ref, np.array([True] * 45 + [False] * 55))
    p1, p2, pooled = 0.30, 0.45, 75 / 200
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert drift.ztest_categorical(ref, cur) == pytest.approx((z, 2 * stats.norm.sf(abs(z))))


def test_numbers_with_few_values_are_categories_and_auto_follows_evidently() -> None:
    few = profile(np.array([0, 1, 1, 2, 3, 4] * 50))
    assert few.kind == "categorical" and few.categories == {1: 100, 0: 50, 2: 50, 3: 50, 4: 50}
    assert drift.choose(few, 300)[0] == "chi2"
    binary = profile(np.array([0, 1] * 100))
    assert drift.choose(binary, 200) == (
        "ztest",
        "the reference has 200 rows (<= 1,000) and 2 categories: categorical (binary): Z-test of "
        "proportions, drift if p < 0.05",
    )
    assert drift.choose(binary, 5000)[0] == "jensenshannon"
    numeric = profile(SMALL_REF)
    assert drift.choose(numeric, 800)[0] == "ks"
    assert drift.choose(numeric, 1001) == (
        "wasserstein",
        "the reference has 1,001 rows (> 1,000) and 800 distinct values (> 5): numeric: normalized "
        "Wasserstein distance, drift if >= 0.1",
    )
    with pytest.raises(ValidationError, match="unknown drift test 'kolmogorov'"):
        drift.check_test("kolmogorov", "x")
    with pytest.raises(ValidationError, match="'chi2' does not apply to the numeric column 'x'"):
        drift.check_test("chi2", "x", numeric)
    with pytest.raises(ValidationError, match="'ztest' needs a binary column"):
        drift.check_test("ztest", "x", few)


def test_quality_checks() -> None:
    ref = profile(np.concatenate([np.linspace(0, 10, 95), [np.nan] * 5]))
    assert ref.nulls == 5
    cur = summary(ref, np.concatenate([np.linspace(5, 20, 80), [np.nan] * 20]))
    checks = {c.test: c for c in drift.quality_checks(ref, cur, drift.DEFAULT_THRESHOLDS)}
    assert checks["null_rate"].statistic == 0.2 and checks["null_rate"].threshold == pytest.approx(0.1)
    assert checks["null_rate"].drifted
    outside = np.count_nonzero(np.linspace(5, 20, 80) > 10) / 80
    assert checks["out_of_range"].statistic == pytest.approx(outside) and checks["out_of_range"].drifted
    cats = profile(np.array(["a", "b"] * 50, dtype=object))
    window = summary(cats, np.array(["a"] * 97 + ["z"] * 3, dtype=object))
    unseen = {c.test: c for c in drift.quality_checks(cats, window, drift.DEFAULT_THRESHOLDS)}[
        "unseen_categories"
    ]
    assert unseen.statistic == pytest.approx(0.03) and not unseen.drifted


def test_exact_limit_switches_to_the_sketch() -> None:
    ref = profile(SMALL_REF)
    assert summary(ref, RNG.normal(size=EXACT_LIMIT)).values is not None
    assert summary(ref, RNG.normal(size=EXACT_LIMIT + 1)).values is None
