"""Raw tensors: the binary tensor extension of the HTTP protocol and gRPC's raw contents.

Both carry a tensor as its flattened row-major elements in little-endian byte order, one byte
per BOOL, and each BYTES element as a 4-byte little-endian length followed by its bytes
(Triton's ``binary_tensor_data`` extension and the ``raw_input_contents`` /
``raw_output_contents`` of the gRPC protocol).

Over HTTP the body is the JSON inference header followed by the raw tensors; the
``Inference-Header-Content-Length`` header says where the JSON ends. An input sent this way has
``"parameters": {"binary_data_size": <bytes>}`` and no ``data``; an output is returned this way
when the request asks with ``"parameters": {"binary_data": true}`` on the output or
``"binary_data_output": true`` on the request (tritonclient's ``binary_data=True``).
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.serving.protocol import DATATYPES, InferInput, check_fields, check_shape, datatype_of, short_repr

if TYPE_CHECKING:
    import numpy as np

HEADER = "inference-header-content-length"
"""The HTTP header giving the length of the JSON part of a binary request or response."""
_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header: str) -> tuple[bytes, bytes]:
    """The JSON part and the raw tensors of a body whose JSON is ``header`` bytes long.

    Raises:
        ValidationError: the header is not a length within the body.
    """
    size = int(header) if header.isascii() and header.isdigit() else -1
    if not 0 < size <= len(body):
        raise ValidationError(
            f"Inference-Header-Content-Length must be the byte length of the JSON part of the body "
            f"(1..{len(body)}), got {short_repr(header)}"
        )
    return body[:size], body[size:]


def parse_binary_inputs(raw_inputs: list[Any], binary: bytes) -> list[InferInput]:
    """The inputs of a binary request: those with ``binary_data_size`` take their bytes from
    ``binary`` in order, the others carry JSON ``data``; every byte must be used."""
    from fti.serving.protocol import parse_input

    offset = 0
    inputs = []
    for index, item in enumerate(raw_inputs):
        params = item.get("parameters") if isinstance(item, dict) else None
        if not isinstance(params, dict) or "binary_data_size" not in params:
            inputs.append(parse_input(item, index))
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ValidationError(f"inputs[{index}] has no string 'name'")
        check_fields(item, ("name", "shape", "datatype", "parameters"), f"binary input {name!r}")
        size = params["binary_data_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValidationError(
                f"input {name!r}: binary_data_size must be a byte count, got {short_repr(size)}"
            )
        if offset + size > len(binary):
            raise ValidationError(
                f"input {name!r}: binary_data_size {size} goes past the end of the binary data "
                f"({len(binary) - offset} bytes left)"
            )
        for key in ("shape", "datatype"):
            if key not in item:
                raise ValidationError(f"input {name!r} has no {key!r}")
        inputs.append(decode(name, item["datatype"], item["shape"], binary[offset : offset + size]))
        offset += size
    if offset != len(binary):
        raise ValidationError(
            f"the body has {len(binary) - offset} bytes of binary data that no input's "
            "binary_data_size accounts for"
        )
    return inputs


def decode(name: str, datatype: Any, shape: Any, raw: bytes) -> InferInput:
    """One input tensor from its raw bytes.

    Raises:
        ValidationError: naming the input: an unknown datatype, a bad shape, a byte count that
            does not fit the shape, infinite values, BOOL bytes other than 0/1, bad UTF-8.
    """
    import numpy as np

    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise ValidationError(
            f"input {name!r}: unknown datatype {short_repr(datatype)}; use one of {', '.join(DATATYPES)}"
        )
    dims = check_shape(name, shape)
    size = math.prod(dims)
    missing = False
    if datatype == "BYTES":
        array = np.empty(size, dtype=object)
        array[:] = _strings(name, raw, size)
    elif datatype == "BOOL":
        values = np.frombuffer(_exact(name, raw, size, 1), dtype=np.uint8)
        if values.size and int(values.max()) > 1:
            raise ValidationError(f"input {name!r}: BOOL bytes must be 0 or 1")
        array = values.astype(bool)
    else:
        dtype = np.dtype(DATATYPES[datatype]).newbyteorder("<")
        array = np.frombuffer(_exact(name, raw, size, dtype.itemsize), dtype=dtype)
        if dtype.kind == "f":
            if bool(np.isinf(array).any()):
                raise ValidationError(f"input {name!r}: infinite values are not allowed")
            missing = bool(np.isnan(array).any())
        array = array.astype(dtype.newbyteorder("="), copy=False)
    return InferInput(name, dims, datatype, array.reshape(dims), missing)


def _exact(name: str, raw: bytes, size: int, itemsize: int) -> bytes:
    if len(raw) != size * itemsize:
        raise ValidationError(
            f"input {name!r}: {len(raw)} bytes of data, but its shape needs {size} elements of "
            f"{itemsize} byte(s) = {size * itemsize} bytes"
        )
    return raw


def _strings(name: str, raw: bytes, size: int) -> list[str]:
    out: list[str] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ValidationError(f"input {name!r}: BYTES data ends inside an element's 4-byte length")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise ValidationError(f"input {name!r}: a BYTES element of {length} bytes goes past the data")
        try:
            out.append(raw[offset : offset + length].decode())
        except UnicodeDecodeError:
            raise ValidationError(f"input {name!r}: BYTES element {len(out)} is not UTF-8 text") from None
        offset += length
    if len(out) != size:
        raise ValidationError(
            f"input {name!r}: its shape needs {size} BYTES elements, the data has {len(out)}"
        )
    return out


def encode(array: np.ndarray) -> bytes:
    """The raw bytes of an output tensor (its datatype is :func:`~fti.serving.protocol.datatype_of`)."""
    import numpy as np

    datatype = datatype_of(array)
    if datatype == "BYTES":
        parts = []
        for value in array.ravel().tolist():
            data = value if isinstance(value, bytes) else str(value).encode()
            parts += [_LENGTH.pack(len(data)), data]
        return b"".join(parts)
    if datatype == "BOOL":
        return array.astype(np.uint8).tobytes()
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def wanted(
    request_parameters: dict[str, Any], output_parameters: dict[str, dict[str, Any]], name: str
) -> bool:
    """Whether output ``name`` goes back as raw bytes: its own ``binary_data`` parameter, else
    the request's ``binary_data_output``."""
    own = output_parameters.get(name, {}).get("binary_data")
    if own is not None:
        return bool(own)
    return bool(request_parameters.get("binary_data_output", False))


def response_body(
    payload: dict[str, Any], arrays: dict[str, np.ndarray], binary: set[str]
) -> tuple[bytes, int]:
    """The body of a response whose ``binary`` outputs go as raw bytes after the JSON, and the
    JSON's length (the value of the ``Inference-Header-Content-Length`` header)."""
    from fti.serving.protocol import dumps

    blobs = []
    for output in payload["outputs"]:
        if output["name"] in binary:
            blob = encode(arrays[output["name"]])
            output.pop("data")
            output["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
    header = dumps(payload)
    return header + b"".join(blobs), len(header)
