"""Columnar data to the row-major float64 matrix every scorer takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    import numpy as np


def to_matrix(data: Any, columns: Sequence[str]) -> np.ndarray:
    """``columns`` of a pyarrow Table/RecordBatch or pandas DataFrame as a row-major float64 matrix.

    Arrow data is cast once to an all-float64 schema and copied into one contiguous row-major
    buffer by Arrow itself (``Table.to_tensor``), with no Python loop over columns; nulls become
    NaN. Booleans and integers become 0/1 and exact floats.

    Raises:
        SchemaError: a column is missing or not numeric.
        ValidationError: ``data`` is neither Arrow nor pandas.
    """
    import numpy as np
    import pyarrow as pa

    from fti.errors import SchemaError

    columns = list(columns)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        if type(data).__module__.split(".")[0] != "pandas":
            raise ValidationError(f"expected a pyarrow Table or pandas DataFrame, got {type(data).__name__}")
        data = pa.Table.from_pandas(data[columns] if columns else data, preserve_index=False)
    missing = [c for c in columns if c not in data.column_names]
    if missing:
        raise SchemaError(
            f"model input column(s) {missing} missing from the data (it has {data.column_names})"
        )
    table = data.select(columns)
    bad = [
        f.name
        for f in table.schema
        if not (
            pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_boolean(f.type)
            or pa.types.is_null(f.type)
        )
    ]
    if bad:
        raise SchemaError(
            f"model input column(s) {bad} are not numeric; encode them in the feature view's "
            "transformations (e.g. one-hot) so the model receives numbers"
        )
    if table.num_rows == 0:
        return np.empty((0, len(columns)), dtype=np.float64)
    target = pa.schema([pa.field(name, pa.float64()) for name in columns])
    return np.asarray(table.cast(target).to_tensor(null_to_nan=True, row_major=True))
