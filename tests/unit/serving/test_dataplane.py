"""The fast lane for well-formed requests gives the careful path's matrix, and steps aside otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fti.registry.signature import ModelSignature, TensorSpec
from fti.serving import dataplane, protocol

NAMES = ["a", "b", "c"]
SIGNATURE = ModelSignature(
    [TensorSpec(n, "FP64", [-1]) for n in NAMES], [TensorSpec("predict", "INT64", [-1])]
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
    fast = dataplane.fast_plain(_payload(), ORDER)
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
    assert dataplane.fast_plain(payload, ORDER) is None
