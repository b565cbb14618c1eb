"""Open Inference Protocol request parsing: datatypes, nested or flat data, and clear 400s."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fti.errors import ValidationError
from fti.serving import protocol


def _req(*inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"inputs": list(inputs), **extra}


def test_flat_and_nested_data_give_the_same_tensor() -> None:
    flat = protocol.parse_infer_request(
        _req({"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]})
    )
    nested = protocol.parse_infer_request(
        _req({"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6]]})
    )
    assert flat.inputs[0].data.dtype == np.float32
    assert flat.inputs[0].data.shape == (2, 3)
    np.testing.assert_array_equal(flat.inputs[0].data, nested.inputs[0].data)


@pytest.mark.parametrize(
    ("datatype", "data", "dtype"),
    [
        ("BOOL", [True, False], np.bool_),
        ("UINT8", [0, 255], np.uint8),
        ("UINT16", [1, 2], np.uint16),
        ("UINT32", [1, 2], np.uint32),
        ("UINT64", [1, 2**63], np.uint64),
        ("INT8", [-128, 127], np.int8),
        ("INT16", [-1, 2], np.int16),
        ("INT32", [-1, 2], np.int32),
        ("INT64", [-(2**62), 2], np.int64),
        ("FP16", [0.5, 1], np.float16),
        ("FP32", [0.5, 1], np.float32),
        ("FP64", [0.5, 1], np.float64),
        ("BYTES", ["a", "é"], object),
    ],
)
def test_every_datatype_parses(datatype: str, data: list[Any], dtype: Any) -> None:
    parsed = protocol.parse_infer_request(
        _req({"name": "x", "shape": [2], "datatype": datatype, "data": data}, id="r1", parameters={"a": 1})
    )
    assert parsed.id == "r1"
    assert parsed.parameters == {"a": 1}
    assert parsed.inputs[0].data.dtype == dtype
    assert parsed.inputs[0].data.tolist() == data if datatype != "FP16" else True


def test_outputs_and_id_are_kept() -> None:
    parsed = protocol.parse_infer_request(
        _req({"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}, outputs=[{"name": "predict"}])
    )
    assert parsed.outputs == ["predict"]
    assert parsed.id is None


def test_nulls_in_float_inputs_are_flagged_as_missing() -> None:
    parsed = protocol.parse_infer_request(
        _req({"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0, None]})
    )
    assert parsed.inputs[0].has_missing
    assert np.isnan(parsed.inputs[0].data[1])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "has no 'inputs'"),
        ({"inputs": []}, "non-empty list"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64"}]}, "input 'x' has no 'data'"),
        (
            {"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0]}]},
            "shape [2] needs 2 values but data has 1",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1.0]}]},
            "unknown datatype 'FLOAT'",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ["a"]}]},
            "datatype FP32 needs numbers, got 'a'",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}]},
            "datatype INT32 needs integers",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}]},
            "out of range for INT8",
        ),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}]}, "BOOL needs true/false"),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": [1]}]},
            "BYTES data must be strings",
        ),
        (
            {"inputs": [{"name": "x", "shape": [-1], "datatype": "FP64", "data": [1]}]},
            "'shape' must be a non-empty list",
        ),
        (
            {"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [[1], [2, 3]]}]},
            "needs 2 values but data has 3",
        ),
        ({"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]}, "inputs[0] has no string 'name'"),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}] * 2},
            "given more than once",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}], "extra": 1},
            "unknown field(s) ['extra']",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}], "id": 5},
            "'id' must be a string",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}], "outputs": [{}]},
            "outputs[0]",
        ),
    ],
)
def test_bad_requests_name_the_problem(body: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        protocol.parse_infer_request(body)
    assert message in info.value.message


def test_malformed_json_is_a_validation_error_and_nan_literals_parse() -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        protocol.loads(b'{"inputs": [')
    payload = protocol.loads(b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [NaN]}]}')
    assert protocol.parse_infer_request(payload).inputs[0].has_missing
    with pytest.raises(ValidationError, match="infinite"):
        protocol.parse_infer_request(
            protocol.loads(
                b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [Infinity]}]}'
            )
        )


def test_outputs_encode_with_datatypes_and_shapes() -> None:
    out = protocol.encode_output("p", np.array([[0.25, 0.75]], dtype=np.float32))
    assert out["shape"] == [1, 2]
    assert out["datatype"] == "FP32"
    assert protocol.dumps(out) == b'{"name":"p","shape":[1,2],"datatype":"FP32","data":[0.25,0.75]}'
    labels = protocol.encode_output("label", np.array(["a", "b"], dtype=object))
    assert labels["datatype"] == "BYTES"
    assert labels["data"] == ["a", "b"]


def test_fast_and_careful_parsing_agree() -> None:
    inputs = [
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.5, 2]},
        {"name": "b", "shape": [2, 1], "datatype": "FP32", "data": [3, 4.25]},
        {"name": "c", "shape": [2], "datatype": "INT64", "data": [5, -6]},
        {"name": "d", "shape": [2], "datatype": "INT32", "data": [7, 8]},
    ]
    fast = protocol.parse_infer_request({"inputs": inputs}).inputs
    careful = [protocol.parse_input(item, i) for i, item in enumerate(inputs)]
    for f, c in zip(fast, careful, strict=True):
        assert (f.name, f.shape, f.datatype, f.data.dtype, f.has_missing) == (
            c.name,
            c.shape,
            c.datatype,
            c.data.dtype,
            c.has_missing,
        )
        np.testing.assert_array_equal(f.data, c.data)
    with pytest.raises(ValidationError, match="out of range for INT32"):
        protocol.parse_infer_request(
            {"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [2**40]}]}
        )


@pytest.mark.parametrize("bad", [[], {}, 5, None])
def test_non_string_datatypes_are_rejected(bad: Any) -> None:
    with pytest.raises(ValidationError, match="unknown datatype"):
        protocol.parse_infer_request({"inputs": [{"name": "x", "shape": [1], "datatype": bad, "data": [1]}]})
