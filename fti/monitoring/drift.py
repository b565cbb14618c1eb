"""Drift tests and data-quality checks of one column: a window's summary against the reference.

Statistical tests (scipy.stats where it has them):

==================  ===========  =========================================================  =========
test                columns      statistic                                                  drift if
==================  ===========  =========================================================  =========
``ks``              numeric      two-sample Kolmogorov-Smirnov D, p-value                   p < 0.05
``chi2``            categorical  chi-squared test of homogeneity (2 x k), p-value           p < 0.05
``ztest``           binary       two-proportion Z-test (pooled), p-value                    p < 0.05
``psi``             both         population stability index                                 >= 0.1
``jensenshannon``   both         Jensen-Shannon distance (natural log, scipy)               >= 0.1
``wasserstein``     numeric      Wasserstein-1 distance / the reference's std               >= 0.1
==================  ===========  =========================================================  =========

Numeric columns are binned at the reference's deciles for ``psi`` and ``jensenshannon``
(right-closed bins, an empty bin counts as 0.0001 in ``psi``); categorical ones compare category
shares. ``ks`` and ``wasserstein`` are exact (scipy on the values) when reference and window each
hold at most :data:`~fti.monitoring.profiles.EXACT_LIMIT` values; otherwise they are computed on
the reference's grid: ``ks`` is then exact when the reference has at most that many distinct
values and otherwise at most one bin's share (0.001) below the true D, with the p-value of the
asymptotic distribution as scipy uses for such samples; ``wasserstein`` is exact except within
bins where the two distributions cross.

``"auto"`` chooses as Evidently does: with at most 1,000 reference rows, ``ks`` for numeric
columns (more than five distinct values), ``ztest`` for binary and ``chi2`` for other categorical
columns; with more, ``wasserstein`` for numeric and ``jensenshannon`` for categorical columns.

Data-quality checks (:func:`quality_checks`): ``null_rate`` (the window's share of nulls exceeds
the reference's by more than 0.05), ``out_of_range`` (more than 5 % of the numeric values outside
the reference's [min, max]) and ``unseen_categories`` (more than 5 % of the values in categories
the reference does not have).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fti.errors import ValidationError
from fti.monitoring.profiles import ColumnProfile
from fti.monitoring.summaries import CategoricalSummary, NumericSummary, Summary

TESTS = ("ks", "chi2", "ztest", "psi", "jensenshannon", "wasserstein")
P_VALUE_TESTS = ("ks", "chi2", "ztest")
NUMERIC_TESTS = ("ks", "psi", "jensenshannon", "wasserstein")
CATEGORICAL_TESTS = ("chi2", "ztest", "psi", "jensenshannon")
CHECKS = ("null_rate", "out_of_range", "unseen_categories")
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chi2": 0.05,
    "ztest": 0.05,
    "psi": 0.1,
    "jensenshannon": 0.1,
    "wasserstein": 0.1,
    "null_rate": 0.05,
    "out_of_range": 0.05,
    "unseen_categories": 0.05,
}
SMALL_REFERENCE = 1_000
"""References with at most this many rows get p-value tests under ``"auto"``."""
DATASET_DRIFT_SHARE = 0.5
"""A window drifts as a whole when at least this share of its columns drift."""
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class Outcome:
    """The result of one test or check on one column."""

    column: str
    test: str
    kind: str
    """``"drift"`` (a statistical test) or ``"quality"`` (a data-quality check)."""
    statistic: float
    threshold: float
    p_value: float | None
    drifted: bool
    """The test found drift (``p < threshold`` or ``statistic >= threshold``), or the check failed."""
    reason: str
    """Why this test was chosen (``"auto"``) or which check it is."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "test": self.test,
            "kind": self.kind,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "drifted": self.drifted,
            "reason": self.reason,
        }


def choose(reference: ColumnProfile, reference_rows: int) -> tuple[str, str]:
    """The ``"auto"`` test of a column and why (see the module docs)."""
    small = reference_rows <= SMALL_REFERENCE
    size = f"the reference has {reference_rows:,} rows ({'<=' if small else '>'} {SMALL_REFERENCE:,})"
    if reference.kind == "numeric":
        kind = f"{reference.distinct:,} distinct values (> 5): numeric"
        if small:
            return "ks", f"{size} and {kind}: Kolmogorov-Smirnov, drift if p < 0.05"
        return "wasserstein", f"{size} and {kind}: normalized Wasserstein distance, drift if >= 0.1"
    values = len(reference.categories)
    kind = f"{values} categor{'y' if values == 1 else 'ies'}: categorical"
    if not small:
        return "jensenshannon", f"{size} and {kind}: Jensen-Shannon distance, drift if >= 0.1"
    if values == 2:
        return "ztest", f"{size} and {kind} (binary): Z-test of proportions, drift if p < 0.05"
    return "chi2", f"{size} and {kind}: chi-squared test, drift if p < 0.05"


def check_test(test: object, column: str, reference: ColumnProfile | None = None) -> str:
    """``test`` if it is a known test applicable to the column, else ValidationError."""
    if not isinstance(test, str) or test not in TESTS:
        raise ValidationError(
            f"unknown drift test {test!r} for {column!r}: use one of {', '.join(TESTS)} or 'auto'"
        )
    if reference is not None:
        allowed = NUMERIC_TESTS if reference.kind == "numeric" else CATEGORICAL_TESTS
        if test not in allowed:
            raise ValidationError(
                f"test {test!r} does not apply to the {reference.kind} column {column!r}: use one of {', '.join(allowed)}"
            )
        if test == "ztest" and len(reference.categories) != 2:
            raise ValidationError(
                f"test 'ztest' needs a binary column, but {column!r} has {len(reference.categories)} categories in the reference"
            )
    return test


def run_test(test: str, reference: ColumnProfile, current: Summary, threshold: float, reason: str) -> Outcome:
    """Run drift test ``test`` on one column; the window must have at least one value."""
    if isinstance(current, NumericSummary):
        statistic, p_value = _NUMERIC[test](reference, current)
    else:
        statistic, p_value = _CATEGORICAL[test](reference, current)
    drifted = p_value < threshold if test in P_VALUE_TESTS else statistic >= threshold  # type: ignore[operator]
    return Outcome(reference.name, test, "drift", float(statistic), threshold, p_value, bool(drifted), reason)


# --- numeric ---------------------------------------------------------------------------------
def _cumulative(shares: np.ndarray, at_edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F(e_i) and F(e_i -) at every edge from bin shares and shares at the edges."""
    right = np.cumsum(shares)[:-1]
    return right, right - at_edges


def ks_numeric(reference: ColumnProfile, current: NumericSummary) -> tuple[float, float]:
    from scipy import stats

    values = current.values
    if reference.values is not None and values is not None:
        result = stats.ks_2samp(reference.values, values)
        return float(result.statistic), float(result.pvalue)
    assert reference.bins is not None and reference.at_edges is not None
    n = current.count
    ref_right, ref_left = _cumulative(reference.bins, reference.at_edges)
    cur_right, cur_left = _cumulative(current.bins / n, current.at_edges / n)
    d = float(max(np.abs(cur_right - ref_right).max(), np.abs(cur_left - ref_left).max()))
    m = reference.count
    # the asymptotic p-value, as scipy.stats.ks_2samp computes it for samples of this size
    p = float(stats.kstwo.sf(d, np.round(m * n / (m + n))))
    return d, min(max(p, 0.0), 1.0)


def _decile_shares(reference: ColumnProfile, current: NumericSummary) -> tuple[np.ndarray, np.ndarray]:
    """Shares of reference and window in the bins at the reference's deciles."""
    assert reference.edges is not None and reference.bins is not None
    deciles = reference.deciles()
    positions = np.searchsorted(reference.edges, deciles)  # deciles are edges of the grid
    ref_cum = np.cumsum(reference.bins)[positions]
    cur_cum = np.cumsum(current.bins)[positions] / current.count
    ref = np.diff(np.concatenate([[0.0], ref_cum, [1.0]]))
    cur = np.diff(np.concatenate([[0.0], cur_cum, [1.0]]))
    return np.clip(ref, 0.0, None), np.clip(cur, 0.0, None)


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """Population stability index of two share vectors (an empty bin counts as 0.0001)."""
    ref = np.where(ref == 0, PSI_FLOOR, ref)
    cur = np.where(cur == 0, PSI_FLOOR, cur)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _js(ref: np.ndarray, cur: np.ndarray) -> float:
    from scipy.spatial import distance

    return float(distance.jensenshannon(ref, cur))


def psi_numeric(reference: ColumnProfile, current: NumericSummary) -> tuple[float, None]:
    return psi(*_decile_shares(reference, current)), None


def js_numeric(reference: ColumnProfile, current: NumericSummary) -> tuple[float, None]:
    return _js(*_decile_shares(reference, current)), None


def wasserstein_numeric(reference: ColumnProfile, current: NumericSummary) -> tuple[float, None]:
    """W1(reference, window) / std(reference) (a constant reference counts std 1)."""
    from scipy import stats

    scale = reference.std or 1.0
    values = current.values
    if reference.values is not None and values is not None:
        return float(stats.wasserstein_distance(reference.values, values)) / scale, None
    edges = reference.edges
    assert edges is not None and reference.bins is not None and reference.bin_means is not None
    n = current.count
    # per bin, the exact integral of (F_window - F_reference) from the bins' counts and sums
    cur_mass = current.bins / n
    cur_mean = np.divide(current.sums, current.bins, out=np.append(edges, edges[-1]), where=current.bins > 0)
    upper = np.append(edges, edges[-1])  # each bin's right edge (the last bin's left edge)
    cur_part = cur_mass * (upper - cur_mean)
    ref_part = reference.bins * (upper - reference.bin_means)
    cur_right, _ = _cumulative(cur_mass, np.zeros(len(edges)))
    ref_right, _ = _cumulative(reference.bins, np.zeros(len(edges)))
    widths = np.diff(edges)
    inner = (cur_right[:-1] - ref_right[:-1]) * widths + (cur_part[1:-1] - ref_part[1:-1])
    first = cur_part[0] - ref_part[0]
    last = ref_part[-1] - cur_part[-1]  # above the last edge: the integral of (1 - F)
    total = float(np.abs(inner).sum() + abs(first) + abs(last))
    return total / scale, None


# --- categorical -----------------------------------------------------------------------------
def _counts(reference: ColumnProfile, current: CategoricalSummary) -> tuple[np.ndarray, np.ndarray]:
    keys = list(dict.fromkeys([*reference.categories, *current.counts]))
    ref = np.array([reference.categories.get(k, 0) for k in keys], dtype=np.float64)
    cur = np.array([current.counts.get(k, 0) for k in keys], dtype=np.float64)
    if reference.other:
        ref = np.append(ref, reference.other)
        cur = np.append(cur, 0.0)
    return ref, cur


def chi2_categorical(reference: ColumnProfile, current: CategoricalSummary) -> tuple[float, float]:
    from scipy import stats

    ref, cur = _counts(reference, current)
    keep = (ref + cur) > 0
    table = np.vstack([ref[keep], cur[keep]])
    if table.shape[1] < 2:  # one category on both sides: nothing can differ
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def ztest_categorical(reference: ColumnProfile, current: CategoricalSummary) -> tuple[float, float]:
    """Two-proportion Z-test of the share of the reference's second category (sorted)."""
    from scipy import stats

    positive = sorted(reference.categories, key=str)[-1]
    n1, n2 = reference.count, current.count
    x1, x2 = reference.categories.get(positive, 0), current.counts.get(positive, 0)
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(z), float(2 * stats.norm.sf(abs(z)))


def psi_categorical(reference: ColumnProfile, current: CategoricalSummary) -> tuple[float, None]:
    ref, cur = _counts(reference, current)
    return psi(ref / ref.sum(), cur / cur.sum()), None


def js_categorical(reference: ColumnProfile, current: CategoricalSummary) -> tuple[float, None]:
    ref, cur = _counts(reference, current)
    return _js(ref / ref.sum(), cur / cur.sum()), None


_NUMERIC: Mapping[str, Any] = {
    "ks": ks_numeric,
    "psi": psi_numeric,
    "jensenshannon": js_numeric,
    "wasserstein": wasserstein_numeric,
}
_CATEGORICAL: Mapping[str, Any] = {
    "chi2": chi2_categorical,
    "ztest": ztest_categorical,
    "psi": psi_categorical,
    "jensenshannon": js_categorical,
}


# --- data quality ----------------------------------------------------------------------------
def quality_checks(
    reference: ColumnProfile, current: Summary, thresholds: Mapping[str, float]
) -> list[Outcome]:
    """The data-quality checks of one column (the window must have rows)."""
    out: list[Outcome] = []
    null_share = current.nulls / current.rows if current.rows else 0.0
    limit = reference.null_share + thresholds["null_rate"]
    out.append(
        Outcome(
            reference.name,
            "null_rate",
            "quality",
            null_share,
            limit,
            None,
            null_share > limit,
            f"share of nulls; the reference has {reference.null_share:.4f}",
        )
    )
    if not current.count:
        return out
    if isinstance(current, NumericSummary):
        share = current.out_of_range() / current.count
        limit = thresholds["out_of_range"]
        why = f"share of values outside the reference's [{reference.minimum:g}, {reference.maximum:g}]"
        out.append(Outcome(reference.name, "out_of_range", "quality", share, limit, None, share > limit, why))
    elif not reference.other:  # only when the reference kept every category
        share = current.unseen() / current.count
        limit = thresholds["unseen_categories"]
        why = "share of values in categories the reference does not have"
        out.append(
            Outcome(reference.name, "unseen_categories", "quality", share, limit, None, share > limit, why)
        )
    return out
