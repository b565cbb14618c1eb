"""Slicing evaluated rows: by value, and numeric columns cut into bins (fti.bins)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fti
from fti.errors import SchemaError, ValidationError
from fti.registry.evaluation.slicing import MAX_GROUPS, NULL, groups, parse_specs


@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)), max_size=60
    ),
    edges=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=6, unique=True).map(sorted),
)
def test_every_row_falls_in_the_one_bin_that_holds_it(values: list[float | None], edges: list[float]) -> None:
    spec = fti.bins("v", edges)
    labels, order = groups(pa.array(values, type=pa.float64()), spec)
    names = spec.bin_labels()
    assert len(labels) == len(values)
    for value, label in zip(values, labels, strict=True):
        if value is None or math.isnan(value):
            assert label == NULL
            continue
        i = names.index(label)
        lower = -math.inf if i == 0 else spec.edges[i - 1]
        upper = math.inf if i == len(spec.edges) else spec.edges[i]
        assert lower <= value < upper or (value == math.inf and upper == math.inf)
    # the groups that occur, in bin order, null last
    present = set(labels.tolist())
    assert order == [n for n in [*names, NULL] if n in present]


def test_bins_labels_and_names() -> None:
    spec = fti.bins(
        "birth_year", [1900, 1966, 1986, 2100], labels=["60+", "40-59", "under 40"], name="age_group"
    )
    assert (
        spec.feature == "age_group"
        and spec.describe() == "birth_year bins [1900, 1966, 1986, 2100] as age_group"
    )
    labels, order = groups(pa.array([1950, 1970, 1999, None, 1800], type=pa.int64()), spec)
    assert labels.tolist() == ["60+", "40-59", "under 40", NULL, "[-inf, 1900)"]
    assert order == ["[-inf, 1900)", "60+", "40-59", "under 40", NULL]
    assert fti.bins("amount", [0, 50, 500]).bin_labels() == [
        "[-inf, 0)",
        "[0, 50)",
        "[50, 500)",
        "[500, inf)",
    ]


def test_slicing_by_value_orders_numbers_as_numbers() -> None:
    labels, order = groups(pa.array([10, 9, None, 9, 2]), "n")
    assert labels.tolist() == ["10", "9", NULL, "9", "2"]
    assert order == ["2", "9", "10", NULL]
    labels, order = groups(pa.chunked_array([["b", "a"], ["b"]]), "s")
    assert labels.tolist() == ["b", "a", "b"] and order == ["a", "b"]
    assert groups(pa.array([True, False]), "flag")[1] == ["false", "true"]
    assert groups(pa.array([0.5, 0.25]), "f")[1] == ["0.25", "0.5"]


def test_too_many_values_and_bins_of_text_are_refused() -> None:
    with pytest.raises(ValidationError, match=f"more than {MAX_GROUPS} slices"):
        groups(pa.array(np.arange(MAX_GROUPS + 1)), "id")
    groups(pa.array(np.arange(MAX_GROUPS)), "id")  # at the limit: fine
    with pytest.raises(SchemaError, match="bins need a numeric column"):
        groups(pa.array(["a"]), fti.bins("s", [0, 1]))


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("", [0, 1]), {}, "bins need a column name"),
        (("a", [0]), {}, "at least two edges"),
        (("a", "01"), {}, "at least two edges"),
        (("a", [0, float("nan")]), {}, "finite numbers"),
        (("a", [0, True]), {}, "finite numbers"),
        (("a", [1, 0]), {}, "strictly increasing"),
        (("a", [0, 0]), {}, "strictly increasing"),
        (("a", [0, 1, 2]), {"labels": ["x"]}, "need 2 distinct labels"),
        (("a", [0, 1, 2]), {"labels": ["x", "x"]}, "need 2 distinct labels"),
        (("a", [0, 1]), {"labels": "x"}, "list of non-empty strings"),
        (("a", [0, 1]), {"name": "a=b"}, "without '=' or '@'"),
    ],
)
def test_bad_bins(args: tuple[object, ...], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        fti.bins(*args, **kwargs)  # type: ignore[arg-type]


def test_specs_round_trip_and_are_checked() -> None:
    from fti.registry.evaluation.slicing import spec_from_json, spec_to_json

    spec = fti.bins("amount", [0, 50], labels=["small"], name="amount_band")
    assert spec_from_json(spec_to_json(spec)) == spec and spec_from_json(spec_to_json("region")) == "region"
    assert parse_specs(None, "slices") == [] and parse_specs(("a", spec), "slices") == ["a", spec]
    with pytest.raises(ValidationError, match="is not a column name"):
        parse_specs(["a=b"], "slices")
