"""Transformations: fitting, the one apply path (Arrow and Python lists alike), unseen values."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from fti.errors import ValidationError
from fti.features.transformations import UNSEEN_CATEGORY, Transformer, bucketize, fit, parse

VALUES = [3.5, -1.25, 8.0, None, 0.5, 12.0, 2.0]


def clip_at_five(values: np.ndarray) -> np.ndarray:
    """A custom transformation used by the tests through its import path."""
    return np.minimum(values, 5.0)


def wrong_length(values: np.ndarray) -> np.ndarray:
    return np.zeros(len(values) + 1)


def run(spec: str, dtype: str, values: list, train: list | None = None) -> tuple[list, list, list[str]]:
    """Fit on ``train`` (default ``values``) and apply to Arrow and list inputs."""
    specs = {"x": parse(spec, "x")}
    arrow_type = pa.float64() if dtype == "float64" else pa.string()
    stats = fit(specs, {"x": pa.chunked_array([pa.array(train or values, arrow_type)])})
    transformer = Transformer([("x", dtype)], specs, stats)
    from_arrow = [c.tolist() for c in transformer.apply([pa.chunked_array([pa.array(values, arrow_type)])])]
    from_list = [c.tolist() for c in transformer.apply([list(values)])]
    return from_arrow, from_list, transformer.output_names


def same(a: list, b: list) -> bool:
    return np.array_equal(np.array(a, dtype=float), np.array(b, dtype=float), equal_nan=True)


@pytest.mark.parametrize(
    ("spec", "reference"),
    [
        ("standard_scaler", StandardScaler()),
        ("min_max_scaler", MinMaxScaler()),
        ("robust_scaler", RobustScaler()),
    ],
)
def test_scalers_match_scikit_learn(spec, reference) -> None:
    from_arrow, from_list, names = run(spec, "float64", VALUES)
    assert names == ["x"]
    assert from_arrow == from_list or same(from_arrow[0], from_list[0])  # bit-identical either way
    data = np.array([v for v in VALUES if v is not None]).reshape(-1, 1)
    expected = reference.fit(data).transform(np.array(VALUES, dtype=float).reshape(-1, 1)).ravel()
    assert np.allclose(np.array(from_arrow[0], dtype=float), expected, equal_nan=True, rtol=1e-12)
    assert np.isnan(from_arrow[0][3])  # null stays missing


def test_constant_column_scales_by_one() -> None:
    from_arrow, _, _ = run("standard_scaler", "float64", [2.0, 2.0], train=[2.0, 2.0])
    assert from_arrow == [[0.0, 0.0]]


def test_log1p_and_bucketize() -> None:
    from_arrow, from_list, _ = run("log1p", "float64", [0.0, 1.0, -1.0, -3.0, None])
    assert same(from_arrow[0], from_list[0])
    assert from_arrow[0][:2] == [0.0, float(np.log1p(1.0))] and all(np.isnan(from_arrow[0][2:]))
    spec = bucketize([0, 10, 100])
    assert spec == "bucketize(0.0, 10.0, 100.0)"
    from_arrow, from_list, _ = run(spec, "float64", [-5.0, 0.0, 9.9, 10.0, 500.0, None])
    assert from_arrow == from_list == [[0, 1, 1, 2, 3, -1]]


def test_encoders_map_unseen_and_null_to_documented_values() -> None:
    train = ["b", "a", "b", None]
    from_arrow, from_list, names = run("label_encoder", "string", ["a", "b", "zzz", None], train=train)
    assert from_arrow == from_list == [[0, 1, UNSEEN_CATEGORY, UNSEEN_CATEGORY]]
    assert names == ["x"]
    from_arrow, from_list, names = run("one_hot_encoder", "string", ["a", "b", "zzz", None], train=train)
    assert names == ["x_a", "x_b"]
    assert from_arrow == from_list == [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]


@pytest.mark.parametrize("path", [f"{__name__}:clip_at_five", f"{__name__}.clip_at_five"])
def test_custom_function_by_import_path(path) -> None:
    from_arrow, from_list, _ = run(path, "float64", [1.0, 7.0, None])
    assert same(from_arrow[0], [1.0, 5.0, np.nan]) and same(from_list[0], from_arrow[0])


def test_custom_function_must_keep_the_length() -> None:
    with pytest.raises(ValidationError, match="must return one value per input value"):
        run(f"{__name__}:wrong_length", "float64", [1.0])


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("scale", "unknown transformation 'scale'"),
        ("", "must be a name string"),
        (3, "must be a name string"),
        ("bucketize()", "strictly increasing"),
        ("bucketize(1, x)", "strictly increasing"),
        (f"{__name__}:nope", "cannot be imported"),
        (f"{__name__}:VALUES", "is not a function"),
    ],
)
def test_bad_specs(spec, match) -> None:
    with pytest.raises(ValidationError, match=match):
        parse(spec, "x")


def test_fitted_transformations_without_statistics() -> None:
    with pytest.raises(ValidationError, match="create training data first"):
        Transformer([("x", "float64")], {"x": parse("standard_scaler", "x")}, {})
