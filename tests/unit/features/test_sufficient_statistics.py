"""Transformation statistics combined from per-part sufficient statistics equal the pooled fit."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.errors import ValidationError
from fti.features.transformations import combine_statistics, fit, parse, sufficient_statistics

SPECS = {
    "amount": parse("standard_scaler", "amount"),
    "limit": parse("min_max_scaler", "limit"),
    "provider": parse("one_hot_encoder", "provider"),
    "bank": parse("label_encoder", "bank"),
    "raw": parse("log1p", "raw"),  # stateless: no statistics at all
}

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
row = st.tuples(
    st.one_of(st.none(), finite, st.just(math.nan)),
    st.one_of(st.none(), finite),
    st.one_of(st.none(), st.sampled_from(["visa", "amex", "mastercard", "discover"])),
    st.one_of(st.none(), st.integers(-3, 3)),
)


def columns(rows: list[tuple[object, ...]]) -> dict[str, pa.Array]:
    amount, limit, provider, bank = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [])
    return {
        "amount": pa.array(amount, pa.float64(), from_pandas=True),
        "limit": pa.array(limit, pa.float64()),
        "provider": pa.array(provider, pa.string()),
        "bank": pa.array(bank, pa.int64()),
        "raw": pa.array([0.0] * len(rows)),
    }


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row, max_size=60), cuts=st.lists(st.integers(0, 60), max_size=6))
def test_combined_parts_equal_the_pooled_fit(rows: list[tuple[object, ...]], cuts: list[int]) -> None:
    bounds = sorted({0, len(rows), *(min(c, len(rows)) for c in cuts)})
    parts = [rows[a:b] for a, b in itertools.pairwise(bounds)] or [[]]
    # what a client sends travels as JSON
    partials = [json.loads(json.dumps(sufficient_statistics(SPECS, columns(p)))) for p in parts]
    combined = combine_statistics(SPECS, partials)
    pooled = fit(SPECS, columns(rows))
    assert set(combined) == set(pooled) == {"amount", "limit", "provider", "bank"}
    assert combined["provider"] == pooled["provider"] and combined["bank"] == pooled["bank"]
    assert combined["limit"] == pooled["limit"]  # min and max are exact
    for key in ("mean", "std"):
        assert combined["amount"][key] == pytest.approx(pooled["amount"][key], rel=1e-9, abs=1e-6)


def test_parts_carry_counts_sums_and_category_counts_only() -> None:
    part = sufficient_statistics(
        SPECS,
        columns([(1.0, 5.0, "visa", 1), (3.0, None, "visa", 2), (None, 7.0, "amex", None)]),
    )
    assert part["amount"] == {"count": 2, "sum": 4.0, "m2": 2.0}
    assert part["limit"] == {"count": 2, "min": 5.0, "max": 7.0}
    assert part["provider"] == {"counts": [["amex", 1], ["visa", 2]]}
    assert part["bank"] == {"counts": [[1, 1], [2, 1]]}
    # a part without values contributes nothing (an empty partition does not shift the mean)
    empty = sufficient_statistics(SPECS, columns([]))
    assert combine_statistics(SPECS, [part, empty])["amount"] == {"mean": 2.0, "std": 1.0}
    assert np.isclose(combine_statistics(SPECS, [empty])["amount"]["std"], 1.0)


def test_quantiles_have_no_sufficient_statistics() -> None:
    specs = {"amount": parse("robust_scaler", "amount")}
    with pytest.raises(ValidationError, match="robust_scaler on 'amount' needs quantiles"):
        sufficient_statistics(specs, {"amount": pa.array([1.0, 2.0])})
