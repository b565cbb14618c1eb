"""Arrow <-> numpy through raw buffers.

pyarrow's own conversions (``pa.array``, ``pa.scalar``, ``Array.to_numpy``) import pandas on first
use. A model server or a batch job's reader that never needs pandas must not load it (about 0.1 s
and 60 MB), so the few conversions on those paths go through these functions instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def to_arrow(values: np.ndarray, arrow_type: Any = None) -> pa.Array:
    """A null-free Arrow array over a numeric (or bool) numpy column's memory (copied only if
    strided; booleans are bit-packed)."""
    import numpy as np
    import pyarrow as pa

    if values.dtype == np.bool_:
        return pa.Array.from_buffers(
            pa.bool_(), len(values), [None, pa.py_buffer(np.packbits(values, bitorder="little"))]
        )
    contiguous = np.ascontiguousarray(values)
    kind = arrow_type if arrow_type is not None else pa.from_numpy_dtype(contiguous.dtype)
    return pa.Array.from_buffers(kind, len(contiguous), [None, pa.py_buffer(contiguous)])


def integer_view(array: pa.Array) -> np.ndarray:
    """The values of a fixed-width integer-backed array (integers, timestamps, dictionary
    indices) as a numpy view of its data buffer; null slots hold arbitrary values."""
    import numpy as np

    dtype = np.dtype(f"int{array.type.bit_width}")
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
    )


def strings_to_arrow(values: Sequence[str]) -> pa.Array:
    """A null-free Arrow string array built from its offsets and UTF-8 bytes."""
    import numpy as np
    import pyarrow as pa

    n = len(values)
    joined = "".join(values)
    data = joined.encode()
    offsets = np.zeros(n + 1, dtype=np.int32)
    if len(data) == len(joined):  # ASCII (ids, names): a character is a byte, no per-value encode
        np.cumsum(np.fromiter(map(len, values), np.int64, n), out=offsets[1:])
    else:
        np.cumsum([len(v.encode()) for v in values], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def repeated_string(value: str, n: int) -> pa.Array:
    """A string array of ``n`` times ``value``."""
    import numpy as np
    import pyarrow as pa

    data = value.encode()
    offsets = np.arange(n + 1, dtype=np.int32) * len(data)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])


def values_to_arrow(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    """A nullable Arrow array of Python values (``None`` is null) of a numeric, bool, string or
    timestamp type, built from buffers. Other types go through ``pa.array`` (which loads pandas).

    Timestamps are tz-aware datetimes (a naive one is taken as UTC); they are stored in the
    microseconds of ``arrow_type``'s unit.
    """
    import numpy as np
    import pyarrow as pa

    n = len(values)
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
    nulls = n - int(valid.sum())
    validity = None if nulls == 0 else pa.py_buffer(np.packbits(valid, bitorder="little"))
    if pa.types.is_string(arrow_type):
        encoded = [b"" if v is None else str(v).encode() for v in values]
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
        return pa.Array.from_buffers(pa.string(), n, buffers, null_count=nulls)
    if pa.types.is_boolean(arrow_type):
        bits = np.packbits(np.fromiter((bool(v) for v in values), dtype=bool, count=n), bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), n, [validity, pa.py_buffer(bits)], null_count=nulls)
    if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "us":
        micros = np.fromiter((_micros(v) for v in values), dtype=np.int64, count=n)
        return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(micros)], null_count=nulls)
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        dtype = np.dtype(arrow_type.to_pandas_dtype())
        fill = 0 if dtype.kind in "iu" else np.nan
        data = np.array([fill if v is None else v for v in values], dtype=dtype)
        return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(data)], null_count=nulls)
    return pa.array(values, type=arrow_type)


def _micros(value: Any) -> int:
    from datetime import UTC, datetime, timedelta

    if value is None:
        return 0
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int((value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))
