"""fti dtypes as Spark SQL types, and a Spark DataFrame checked against a feature group's schema.

The same vocabulary as :mod:`fti.types` (one Arrow type per dtype): Spark's ``TimestampType`` is an
instant, stored as microseconds since the epoch, like fti's tz-aware UTC ``timestamp``;
``TimestampNTZType`` is a naive time and is refused, as naive pandas times are. The casts allowed
on insert are those of :func:`fti.features.ingestion.prepare`: same type, integer widening,
integer or float to a float column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fti.errors import SchemaError
from fti.types import Feature

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType, StructType

_INTS = ("int8", "int16", "int32", "int64")
_FLOATS = ("float32", "float64")


def spark_type(dtype: str) -> DataType:
    """The Spark SQL type of an fti dtype."""
    from pyspark.sql import types as T

    table: dict[str, DataType] = {
        "bool": T.BooleanType(),
        "int8": T.ByteType(),
        "int16": T.ShortType(),
        "int32": T.IntegerType(),
        "int64": T.LongType(),
        "float32": T.FloatType(),
        "float64": T.DoubleType(),
        "string": T.StringType(),
        "binary": T.BinaryType(),
        "date": T.DateType(),
        "timestamp": T.TimestampType(),
    }
    return table[dtype]


def dtype_of(spark: DataType) -> str | None:
    """The fti dtype of a Spark type, or None when fti cannot store it (naive timestamps, nested)."""
    from pyspark.sql import types as T

    pairs: list[tuple[type[DataType], str]] = [
        (T.BooleanType, "bool"),
        (T.ByteType, "int8"),
        (T.ShortType, "int16"),
        (T.IntegerType, "int32"),
        (T.LongType, "int64"),
        (T.FloatType, "float32"),
        (T.DoubleType, "float64"),
        (T.DecimalType, "float64"),
        (T.StringType, "string"),
        (T.VarcharType, "string"),
        (T.CharType, "string"),
        (T.BinaryType, "binary"),
        (T.DateType, "date"),
        (T.TimestampType, "timestamp"),
    ]
    for kind, dtype in pairs:
        if isinstance(spark, kind):
            return dtype
    return None


def struct_of(features: Sequence[Feature] | Sequence[tuple[str, str]]) -> StructType:
    """A Spark schema with one nullable field per feature (or ``(name, dtype)`` pair)."""
    from pyspark.sql import types as T

    pairs = [(f.name, f.dtype) if isinstance(f, Feature) else f for f in features]
    return T.StructType([T.StructField(name, spark_type(dtype), True) for name, dtype in pairs])


def struct_of_arrow(schema: pa.Schema) -> StructType:
    """The Spark schema of an Arrow schema made of fti's types (a Delta table's schema)."""
    from fti.types import dtype_of as arrow_dtype

    pairs = []
    for field in schema:
        dtype = arrow_dtype(field.type)
        if dtype is None:
            raise SchemaError(
                f"column {field.name!r} has type {field.type}, which the Spark engine cannot read"
            )
        pairs.append((field.name, dtype))
    return struct_of(pairs)


def _castable(have: str, want: str) -> bool:
    return (
        have == want
        or (have in _INTS and want in _INTS and _INTS.index(have) <= _INTS.index(want))
        or (have in (*_INTS, *_FLOATS) and want in _FLOATS)
    )


def conform(df: DataFrame, features: Sequence[Feature] | None, what: str) -> tuple[DataFrame, list[Feature]]:
    """``df`` with the columns of ``features`` in their order and types (cast where lossless), and
    the schema it fixes (``features`` itself, or on a first insert the one read from ``df``).

    Raises:
        SchemaError: missing, extra, duplicate, unsupported or incompatibly typed columns, naive
            timestamps; every problem is named at once.
    """
    from pyspark.sql import functions as F

    names = df.columns
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SchemaError(f"{what} has duplicate column names: {', '.join(dupes)}")
    given = {field.name: field.dataType for field in df.schema.fields}
    problems: list[str] = []
    if features is None:
        found: list[Feature] = []
        for name, kind in given.items():
            dtype = dtype_of(kind)
            if dtype is None:
                problems.append(f"column {name!r} has unsupported type {_describe(kind)}")
            else:
                found.append(Feature(name, dtype))
        if problems:
            raise SchemaError(f"{what} cannot be stored: " + "; ".join(problems))
        features = found
    expected = {f.name: f.dtype for f in features}
    missing = [n for n in expected if n not in given]
    extra = [n for n in given if n not in expected]
    if missing:
        problems.append(f"missing column(s) {missing}")
    if extra:
        problems.append(f"unexpected column(s) {extra} (add them first with fg.append_features([...]))")
    columns: list[Any] = []
    for name, dtype in expected.items():
        if name not in given:
            continue
        have = dtype_of(given[name])
        if have is None or not _castable(have, dtype):
            problems.append(f"column {name!r} has type {_describe(given[name])}, expected {dtype}")
            continue
        column = F.col(f"`{name}`")
        target = spark_type(dtype)
        columns.append(column if given[name] == target else column.cast(target).alias(name))
    if problems:
        raise SchemaError(f"{what} does not match the schema of the feature group: " + "; ".join(problems))
    return df.select(*columns), list(features)


def _describe(kind: DataType) -> str:
    from pyspark.sql import types as T

    text: str = kind.simpleString()
    if isinstance(kind, T.TimestampNTZType):
        text += " (naive timestamps: cast them to timestamp, read in the session time zone, UTC in fti's sessions)"
    return text
