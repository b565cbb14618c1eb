"""The fast lane for well-formed requests gives the careful path's matrix, and steps aside otherwise."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from fti.errors import ValidationError
from fti.registry.signature import ModelSignature, TensorSpec
from fti.serving import dataplane, protocol

NAMES = ["a", "b", "c"]
DATATYPES = ["FP64", "FP64", "INT64"]
SIGNATURE = ModelSignature(
    [TensorSpec(n, t, [-1]) for n, t in zip(NAMES, DATATYPES, strict=True)],
    [TensorSpec("predict", "INT64", [-1])],
)
ORDER = {n: j for j, n in enumerate(NAMES)}


def _payload(**overrides: Any) -> dict[str, Any]:
    inputs = [
        {"name": "c", "shape": [2], "datatype": "INT64", "data": [5, 6]},
        {"name": "a", "shape": [2, 1], "datatype": "FP64", "data": [1.5, 2.5]},
        {"name": "b", "shape": [2], "datatype": "FP64", "data": [3.0, -4.0]},
    ]
    return {"id": "x", "inputs": inputs, **overrides}


def test_fast_lane_equals_the_careful_path() -> None:
    fast = dataplane.fast_plain(_payload(), ORDER, DATATYPES)
    careful = dataplane.prepare_plain(
        protocol.parse_infer_request(_payload()), SIGNATURE, allow_missing=False
    )
    assert fast is not None and fast.n == careful.n == 2
    assert fast.matrix.dtype == np.float64 and fast.matrix.flags.c_contiguous
    np.testing.assert_array_equal(fast.matrix, careful.matrix)
    np.testing.assert_array_equal(fast.matrix, [[1.5, 3.0, 5.0], [2.5, -4.0, 6.0]])


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["inputs"][0].update(data=[5, None]),
        lambda p: p["inputs"][1].update(data=[float("nan"), 1.0]),
        lambda p: p["inputs"][1].update(name="zz"),
        lambda p: p["inputs"][1].update(name="b"),
        lambda p: p["inputs"].pop(),
        lambda p: p["inputs"][2].update(datatype="FP32"),
        lambda p: p["inputs"][0].update(datatype="FP64", data=[5.0, 6.0]),  # INT64 in the signature
        lambda p: p.update(parameters={"binary_data_output": True}),
        lambda p: p["inputs"][2].update(data=["x", "y"]),
        lambda p: p["inputs"][2].update(shape=[3]),
        lambda p: p["inputs"][2].update(data=[1.0]),
        lambda p: p["inputs"][2].update(data=[[1.0], [2.0]]),
        lambda p: p["inputs"][2].update(parameters={}),
        lambda p: p.update(outputs=[{"name": "predict"}]),
        lambda p: p.update(id=5),
        lambda p: p["inputs"][0].update(name=["c"]),
        lambda p: p["inputs"][0].update(datatype=["FP64"]),
    ],
)
def test_anything_unusual_takes_the_careful_path(change: Any) -> None:
    payload = _payload()
    change(payload)
    assert dataplane.fast_plain(payload, ORDER, DATATYPES) is None


def _request(datatype: str, data: list[Any]) -> protocol.InferRequest:
    payload = _payload()
    payload["inputs"][0].update(datatype=datatype, data=data)  # input "c", INT64 in the signature
    return protocol.parse_infer_request(payload)


@pytest.mark.parametrize(
    ("datatype", "data"), [("FP64", [5.0, 6.0]), ("INT32", [5, 6]), ("BOOL", [True, False])]
)
def test_an_input_of_another_datatype_is_refused_naming_the_input(datatype: str, data: list[Any]) -> None:
    with pytest.raises(
        ValidationError, match=f"input 'c' has datatype {datatype} but the model expects INT64"
    ):
        dataplane.prepare_plain(_request(datatype, data), SIGNATURE, allow_missing=False)


def test_lossless_widening_only_when_the_model_allows_it() -> None:
    widening = replace(SIGNATURE, allow_widening=True)
    prepared = dataplane.prepare_plain(_request("INT32", [5, 6]), widening, allow_missing=False)
    np.testing.assert_array_equal(prepared.matrix[:, 2], [5.0, 6.0])
    with pytest.raises(ValidationError, match=r"has datatype FP64 but the model expects INT64.*without loss"):
        dataplane.prepare_plain(_request("FP64", [5.0, 6.0]), widening, allow_missing=False)
    with pytest.raises(ValidationError, match="allow_widening=True"):
        dataplane.prepare_plain(_request("INT32", [5, 6]), SIGNATURE, allow_missing=False)
