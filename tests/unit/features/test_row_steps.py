"""The one-row twins of the transformation steps (fti.features.row_steps) give, bit for bit, what
the vectorized steps give for the same value inside a column: the online vector of one entity
cannot drift from training and batch data (ARCHITECTURE.md invariant 2, "no skew")."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.features.transformations import Transformer, fit, parse

NUMERIC = ["standard_scaler", "min_max_scaler", "robust_scaler", "log1p", "bucketize(-1, 0, 2.5)"]
CATEGORICAL = ["label_encoder", "one_hot_encoder"]
SPECS = {f"n{i}": kind for i, kind in enumerate(NUMERIC)} | {f"c{i}": k for i, k in enumerate(CATEGORICAL)}

numbers = st.one_of(
    st.none(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1.0, -0.0, 0.0, 2.5, -1.0000000000000002]),
)
categories = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "unseen", ""]))


def _bits(value: Any) -> Any:
    return struct.pack("<d", value) if isinstance(value, float) else (type(value), value)


def _transformer(fitted_on: list[list[Any]]) -> Transformer:
    features = [(name, "float64" if name.startswith("n") else "string") for name in SPECS]
    specs = {name: parse(kind, name) for name, kind in SPECS.items()}
    columns = {name: column for name, column in zip(SPECS, fitted_on, strict=True)}
    return Transformer(features, specs, fit(specs, columns))


@settings(max_examples=300, deadline=None)
@given(
    train=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20),
    rows=st.lists(
        st.tuples(*([numbers] * len(NUMERIC)), *([categories] * len(CATEGORICAL))), min_size=1, max_size=8
    ),
)
def test_a_row_transforms_bit_for_bit_as_in_a_column(train: list[float], rows: list[tuple[Any, ...]]) -> None:
    fitted = [list(train) for _ in NUMERIC] + [["a", "b", "c"] for _ in CATEGORICAL]
    transformer = _transformer(fitted)
    columns = [list(column) for column in zip(*rows, strict=True)]
    with np.errstate(all="ignore"):  # overflow to inf is a result here, as in the row's twin
        vectorized = transformer.apply(columns)  # the values side by side, as training data do
    for i, row in enumerate(rows):
        one = transformer.apply_row(list(row))
        expected = [c.tolist()[i] if hasattr(c, "tolist") else c[i] for c in vectorized]
        assert [_bits(v) for v in one] == [_bits(v) for v in expected], row


def test_unseen_categories_and_nulls_encode_as_the_vectorized_steps_do() -> None:
    transformer = _transformer([[1.0, 2.0, 4.0]] * len(NUMERIC) + [["a", "b"]] * len(CATEGORICAL))
    row = transformer.apply_row([None, None, None, None, None, "zz", None])
    # nulls: NaN for scalers and log1p, -1 for bucketize; unseen: -1 (label), all zeros (one-hot)
    assert [np.isnan(v) for v in row[:4]] == [True] * 4
    assert row[4:] == [-1, -1, 0.0, 0.0]
    assert transformer.apply_row([2.0, 2.0, 2.0, 0.0, 0.0, "b", "a"])[5:] == [1, 1.0, 0.0]
