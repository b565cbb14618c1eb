"""to_matrix: Arrow and pandas data to the scorers' row-major float64 matrix."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fti.errors import SchemaError, ValidationError
from fti.inference.matrix import to_matrix


def test_to_matrix_from_arrow_and_pandas() -> None:
    chunk = pa.table(
        {"a": [1.5, None], "b": pa.array([1, 2], pa.int32()), "c": [True, False], "key": ["x", "y"]}
    )
    table = pa.concat_tables([chunk, chunk])  # several chunks per column
    matrix = to_matrix(table, ["c", "a", "b"])
    expected = np.array([[1.0, 1.5, 1.0], [0.0, np.nan, 2.0]] * 2)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype == np.float64 and matrix.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(to_matrix(table.to_pandas(), ["c", "a", "b"]), expected)
    np.testing.assert_array_equal(to_matrix(table.to_batches()[0], ["b"]), [[1.0], [2.0]])
    assert to_matrix(table.slice(0, 0), ["a", "b"]).shape == (0, 2)
    with pytest.raises(SchemaError, match=r"column\(s\) \['key'\] are not numeric"):
        to_matrix(table, ["a", "key"])
    with pytest.raises(SchemaError, match=r"column\(s\) \['zzz'\] missing"):
        to_matrix(table, ["a", "zzz"])
    with pytest.raises(ValidationError, match="expected a pyarrow Table or pandas DataFrame"):
        to_matrix([[1.0]], ["a"])
