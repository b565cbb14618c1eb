"""Signatures: Open Inference Protocol datatypes, tensor specs and input-example handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fti.errors import ValidationError
from fti.registry.signature import (
    OIP_DATATYPES,
    ModelSignature,
    TensorSpec,
    example_frame,
    infer_signature,
    oip_datatype,
    widens,
)
from fti.serving.protocol import DATATYPES


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.dtype("float32"), "FP32"),
        (np.dtype("float64"), "FP64"),
        (np.dtype("float16"), "FP16"),
        (np.dtype("int8"), "INT8"),
        (np.dtype("int64"), "INT64"),
        (np.dtype("uint16"), "UINT16"),
        (np.dtype("bool"), "BOOL"),
        (np.dtype("U4"), "BYTES"),
        (np.dtype("O"), "BYTES"),
        (pd.Int64Dtype(), "INT64"),
        (pd.BooleanDtype(), "BOOL"),
        (pd.StringDtype(), "BYTES"),
        ("string", "BYTES"),  # fti dtypes
        ("float64", "FP64"),
        ("int32", "INT32"),
        ("timestamp", "BYTES"),
    ],
)
def test_oip_datatypes(dtype: object, expected: str) -> None:
    assert oip_datatype(dtype) == expected


def test_unmappable_dtype() -> None:
    with pytest.raises(ValidationError, match="no Open Inference Protocol datatype"):
        oip_datatype(np.dtype("complex128"))


def test_tensor_specs_validate_and_round_trip() -> None:
    sig = ModelSignature([TensorSpec("amount", "FP64")], [TensorSpec("predict_proba", "FP32", [-1, 2])])
    assert ModelSignature.from_dict(sig.to_dict()) == sig
    assert sig.input_names == ["amount"] and sig.output_names == ["predict_proba"]
    with pytest.raises(ValidationError, match="datatype 'FLOAT'"):
        TensorSpec("x", "FLOAT")
    with pytest.raises(ValidationError, match="invalid shape"):
        TensorSpec("x", "FP32", [-2])
    with pytest.raises(ValidationError, match="non-empty"):
        TensorSpec("", "FP32")


def test_unnamed_array_example_gets_positional_names() -> None:
    example = example_frame(np.zeros((3, 2), dtype=np.float32))
    sig = infer_signature(example, {"predict": np.zeros(3, dtype=np.int64)})
    assert sig.to_dict() == {
        "inputs": [
            {"name": "input_0", "datatype": "FP32", "shape": [-1]},
            {"name": "input_1", "datatype": "FP32", "shape": [-1]},
        ],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
    }


def test_feature_view_names_and_dtypes_win() -> None:
    frame = pd.DataFrame({"a": [1.0], "b": ["x"]})
    sig = infer_signature(
        frame, None, feature_names=["a", "b"], feature_dtypes={"a": "float32", "b": "string"}
    )
    assert [(t.name, t.datatype) for t in sig.inputs] == [("a", "FP32"), ("b", "BYTES")]
    with pytest.raises(ValidationError, match="differ from the feature view's feature names"):
        infer_signature(frame, None, feature_names=["b", "a"])


def test_a_model_may_leave_out_the_views_key_and_event_time_columns() -> None:
    """Hopsworks' views return them among the features; its tutorials drop them before fitting."""
    from fti.registry.signature import check_example_columns

    names = ["cc_num", "amount", "category", "datetime"]
    droppable = {"cc_num", "datetime"}
    frame = pd.DataFrame({"amount": [1.0], "category": [2]})
    assert check_example_columns(frame, names, droppable) == ["amount", "category"]
    assert check_example_columns(frame.assign(datetime=[0]), names, droppable) == [
        "amount",
        "category",
        "datetime",
    ]
    for bad in (frame[["category", "amount"]], frame[["amount"]]):  # order changed; a feature left out
        with pytest.raises(ValidationError, match=r"key and event-time columns \['cc_num', 'datetime'\]"):
            check_example_columns(bad, names, droppable)
    with pytest.raises(ValidationError, match="differ from the feature view's feature names"):
        check_example_columns(frame, names)  # nothing droppable: the view's columns exactly


@pytest.mark.parametrize(
    ("example", "message"),
    [
        (np.zeros((2, 2, 2)), "must be 2-D"),
        (np.zeros((0, 3)), "has no rows"),
        (pd.DataFrame({"a": []}), "has no rows"),
        ("1,2,3", "must be a pandas or polars DataFrame"),
    ],
)
def test_bad_input_examples(example: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        example_frame(example)


def test_examples_from_rows_and_columns() -> None:
    rows = example_frame([{"a": 1.0, "b": 2}, {"a": 3.0, "b": 4}])
    columns = example_frame({"a": [1.0, 3.0], "b": [2, 4]})
    assert isinstance(rows, pd.DataFrame) and isinstance(columns, pd.DataFrame)
    pd.testing.assert_frame_equal(rows, columns)
    assert example_frame(np.arange(3.0)).shape == (1, 3)


def test_a_classifier_records_its_class_labels_in_predict_proba_order(sqlite_project, xy) -> None:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LinearRegression, LogisticRegression

    X, y = xy
    labels = np.where(y == 1, "fraud", "ok")
    mr = sqlite_project.model_registry
    clf = mr.register("clf", LogisticRegression().fit(X, labels), input_example=X.head(3))
    assert clf.signature.classes == ["fraud", "ok"]  # sorted by scikit-learn, the proba columns' order
    assert mr.get_model("clf").signature.classes == ["fraud", "ok"]  # stored with the version
    ints = mr.register("ints", LogisticRegression().fit(X, y))
    assert ints.signature.classes == ["0", "1"]
    reg = mr.register("reg", LinearRegression().fit(X, y.astype(float)), input_example=X.head(3))
    assert reg.signature.classes is None and "classes" not in reg.signature.to_dict()
    # versions stored before labels were recorded read back without them
    assert ModelSignature.from_dict({"inputs": [], "outputs": []}).classes is None


NUMERIC_DATATYPES = [t for t in OIP_DATATYPES if t not in ("BOOL", "BYTES")]


@given(st.sampled_from(OIP_DATATYPES), st.sampled_from(OIP_DATATYPES))
def test_widening_is_lossless_for_the_extremes_of_the_narrower_type(given_: str, expected: str) -> None:
    """Whenever ``widens`` says yes, the extreme values of ``given_`` survive a round trip through
    ``expected``; and it says yes for every safe numpy cast that keeps integers exact."""
    if given_ == expected:
        assert widens(given_, expected)
        return
    if not widens(given_, expected):
        if given_ in NUMERIC_DATATYPES and expected in NUMERIC_DATATYPES and given_ != expected:
            src, dst = np.dtype(DATATYPES[given_]), np.dtype(DATATYPES[expected])
            exact = src.kind == "f" or dst.kind != "f" or src.itemsize * 8 < np.finfo(dst).nmant + 1
            assert not (np.can_cast(src, dst, "safe") and exact)
        return
    src, dst = np.dtype(DATATYPES[given_]), np.dtype(DATATYPES[expected])
    info = np.finfo(src) if src.kind == "f" else np.iinfo(src)
    extremes = np.array([info.min, info.max], dtype=src)
    assert np.array_equal(extremes.astype(dst).astype(src), extremes)
    assert extremes.astype(dst).astype(object).tolist() == extremes.astype(object).tolist()


def test_allow_widening_round_trips_and_is_absent_by_default() -> None:
    plain = ModelSignature([TensorSpec("a", "FP64")], [])
    assert "allow_widening" not in plain.to_dict()
    widening = ModelSignature([TensorSpec("a", "FP64")], [], allow_widening=True)
    assert ModelSignature.from_dict(widening.to_dict()).allow_widening is True
    assert not widens("BOOL", "INT8") and not widens("INT64", "FP64") and widens("UINT8", "INT16")
