"""Property tests of the mergeable statistics state (issue 20): statistics merged over a sequence
of appends equal the full computation (DuckDB over all the rows) exactly for count, nulls, min and
max, to 1e-9 relative for mean and std, and within the sketches' stated error bounds for distinct
counts, histogram counts and frequent values."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import datasketches as ds
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.features.statistics import HISTOGRAM_BINS, compute_statistics
from fti.features.statistics_state import FREQUENT_LG_MAP, KLL_K, TableState

T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1e6)
SHAPES = ("normal", "ints", "constant", "wide", "all_null", "many")


def batch(rows: int, seed: int, shape: str) -> pa.Table:
    """A batch of ``rows`` rows of every kind of column, nulls included, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    nulls = rng.random(rows) < (1.0 if shape == "all_null" else rng.uniform(0, 0.3))
    if shape == "constant":
        floats = np.full(rows, 2.5)
        ints = np.full(rows, 7)
    elif shape == "wide":
        floats = rng.normal(0, 1e5, rows)
        ints = rng.integers(-(10**12), 10**12, rows)
    else:
        floats = rng.normal(rng.uniform(-50, 50), rng.uniform(0.1, 20), rows)
        ints = rng.integers(0, 50 if shape == "ints" else 5000, rows)
    words = [f"w{int(x)}" for x in rng.zipf(1.3, rows) % 40]
    if shape == "many":  # a long tail of distinct values besides the frequent ones
        words = [w if rng.random() < 0.5 else f"t{int(rng.integers(0, 10**6))}" for w in words]
    return pa.table(
        {
            "i": pa.array(ints, pa.int64(), mask=nulls),
            "f": pa.array(floats, pa.float64(), mask=nulls),
            "s": pa.array(words, pa.string(), mask=nulls),
            "b": pa.array(rng.random(rows) < 0.3, pa.bool_(), mask=nulls),
            "ts": pa.array(T0 + rng.integers(0, 10**12, rows), pa.int64(), mask=nulls).cast(
                pa.timestamp("us", tz="UTC")
            ),
        }
    )


batches = st.lists(
    st.tuples(st.integers(0, 2500), st.integers(0, 2**32 - 1), st.sampled_from(SHAPES)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(plan=batches, stored=st.booleans())
def test_merged_statistics_equal_the_full_computation(plan: list[tuple[int, int, str]], stored: bool) -> None:
    tables = [batch(*step) for step in plan]
    state = TableState.of(tables[0])
    for table in tables[1:]:
        if stored:  # as between commits: the previous state comes back from the catalog
            restored = TableState.from_bytes(state.to_bytes())
            assert restored is not None
            state = restored
        state.merge(TableState.of(table))
    whole = pa.concat_tables(tables)
    check(state, state.statistics(), compute_statistics(whole), whole)


def check(state: TableState, merged: dict[str, Any], full: dict[str, Any], whole: pa.Table) -> None:
    assert list(merged) == list(full)
    for name, want in full.items():
        got = merged[name]
        for key in ("dtype", "count", "nulls", "min", "max"):
            assert got[key] == want[key], (name, key)
        scale = max(abs(want["min"] or 0.0), abs(want["max"] or 0.0), 1.0) if name in ("i", "f") else 1.0
        for key in ("mean", "std"):
            if want[key] is None:
                assert got[key] is None, (name, key)
            else:
                assert math.isclose(got[key], want[key], rel_tol=1e-9, abs_tol=1e-12 * scale), (name, key)
        exact = len(set(whole.column(name).drop_null().to_pylist()))
        hll = state.columns[name].hll
        assert got["approx_distinct"] == (round(hll.get_estimate()) if exact else 0)
        assert hll.get_lower_bound(3) <= exact <= hll.get_upper_bound(3), name
        if "histogram" in want:
            check_histogram(state, name, got["histogram"], want["histogram"], whole)
        if "top_values" in want:
            check_top_values(state, name, got, want, whole)


def check_histogram(
    state: TableState, name: str, got: dict[str, Any], want: dict[str, Any], whole: pa.Table
) -> None:
    assert got["edges"] == want["edges"]
    if len(want["counts"]) < HISTOGRAM_BINS:  # empty, or one value: exact
        assert got["counts"] == want["counts"]
        return
    kll = state.columns[name].kll
    assert kll is not None
    assert got.get("approximate", False) == kll.is_estimation_mode()
    n = kll.n
    # two rank estimates per bin, each within the sketch's normalized rank error (none when exact)
    error = (
        2 * ds.kll_doubles_sketch.get_normalized_rank_error(KLL_K, False) * n
        if kll.is_estimation_mode()
        else 0
    )
    # DuckDB bins by floor((x - lo) / width); the sketch compares with the edges: a value on an
    # edge may fall on either side of it through rounding
    x = whole.column(name).drop_null().cast(pa.float64()).to_numpy()
    edges = np.array(want["edges"])
    by_floor = np.minimum(np.floor((x - edges[0]) / ((edges[-1] - edges[0]) / HISTOGRAM_BINS)), 9)
    by_edges = np.searchsorted(edges[1:-1], x, side="right")
    ties = int((by_floor != by_edges).sum())
    assert sum(got["counts"]) == n
    for mine, theirs in zip(got["counts"], want["counts"], strict=True):
        assert abs(mine - theirs) <= error + ties, (name, got["counts"], want["counts"])


def check_top_values(
    state: TableState, name: str, got: dict[str, Any], want: dict[str, Any], whole: pa.Table
) -> None:
    column = state.columns[name]
    if column.frequent is None:  # counted exactly
        assert got["top_values"] == want["top_values"]
        assert "top_values_approximate" not in got
        return
    assert got["top_values_approximate"] is True
    truth = dict(
        zip(
            *(whole.column(name).drop_null().value_counts().flatten()[i].to_pylist() for i in (0, 1)),
            strict=True,
        )
    )
    error = ds.frequent_strings_sketch.get_apriori_error(FREQUENT_LG_MAP, sum(truth.values()))
    for entry in got["top_values"]:
        assert abs(entry["count"] - truth[entry["value"]]) <= error
    first, second = (entry["count"] for entry in want["top_values"][:2])
    if first - second > 2 * error:  # a clear most frequent value is found whatever the sketch dropped
        assert got["top_values"][0]["value"] == want["top_values"][0]["value"]


def test_non_finite_values_follow_duckdb() -> None:
    """NaN and infinity make the mean and std undefined and NaN is the largest value, as DuckDB says."""
    parts = [
        pa.table({"x": pa.array([1.0, 2.0, None])}),
        pa.table({"x": pa.array([float("nan"), -3.0])}),
        pa.table({"x": pa.array([float("inf")])}),
    ]
    for upto in (1, 2, 3):
        state = TableState.of(parts[0])
        for part in parts[1:upto]:
            state.merge(TableState.of(part))
        got, want = state.statistics()["x"], compute_statistics(pa.concat_tables(parts[:upto]))["x"]
        for key in ("count", "nulls", "mean", "std", "min", "max", "histogram"):
            assert got[key] == want[key], (upto, key)


def test_a_state_of_other_columns_is_not_merged() -> None:
    state = TableState.of(pa.table({"x": [1, 2]}))
    assert not state.matches(pa.schema([("x", pa.string())]))
    assert not state.matches(pa.schema([("x", pa.int64()), ("y", pa.int64())]))
    assert state.matches(pa.schema([("x", pa.int32())]))  # counted alike: a narrower stored type
    with pytest.raises(ValueError, match="different columns"):
        state.merge(TableState.of(pa.table({"y": [1]})))
