"""Arrow <-> numpy through raw buffers.

pyarrow's own conversions (``pa.array``, ``pa.scalar``, ``Array.to_numpy``) import pandas on first
use. A model server or a batch job's reader that never needs pandas must not load it (about 0.1 s
and 60 MB), so the few conversions on those paths go through these functions instead.
"""

from __future__ import annotations

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


def strings_to_arrow(values: list[str]) -> pa.Array:
    """A null-free Arrow string array built from its offsets and UTF-8 bytes."""
    import numpy as np
    import pyarrow as pa

    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    data = b"".join(encoded)
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
