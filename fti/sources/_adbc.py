"""Reading PostgreSQL with ADBC: binary COPY straight into Arrow record batches.

Kept apart so that importing :mod:`fti.sources.sql` needs no ADBC. PostgreSQL ``numeric`` columns
arrive as opaque text; a ``numeric(p, s)`` becomes Arrow ``decimal128(p, s)`` (``decimal256`` past
38 digits), an unconstrained ``numeric`` stays exact text (cast it in the query to choose).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.secrets.masking import Masker
    from fti.sources.sql import SQL


def batches(
    uri: str, statement: Any, bound: dict[str, Any], chunk_rows: int | None, masker: Masker, source: SQL
) -> Iterator[pa.RecordBatch]:
    """Execute ``statement`` and stream its rows (at least one, possibly empty, batch)."""
    try:
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:
        raise BackendError(
            "install fti[sources] to read PostgreSQL (pip install 'fti[sources]': the ADBC driver), "
            "or pass driver='sqlalchemy'"
        ) from None
    sql, parameters = _compile(statement, bound)
    try:
        conn = adbc.connect(uri)
    except adbc_driver_manager.Error as exc:
        raise BackendError(f"{source!r}: cannot connect: {masker.text(_message(exc))}") from None
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(sql, parameters=parameters)
                reader = cur.fetch_record_batch()
            except adbc_driver_manager.Error as exc:
                raise ValidationError(f"{source!r}: the query failed: {masker.text(_message(exc))}") from None
            convert = _converter(reader.schema)
            yielded = False
            for batch in reader:
                batch = convert(batch)
                if chunk_rows is None or batch.num_rows <= chunk_rows:
                    yielded = True
                    yield batch
                    continue
                for offset in range(0, batch.num_rows, chunk_rows):
                    yielded = True
                    yield batch.slice(offset, chunk_rows)
            if not yielded:
                import pyarrow as pa

                yield convert(pa.RecordBatch.from_pylist([], schema=reader.schema))
    finally:
        conn.close()


def _compile(statement: Any, bound: dict[str, Any]) -> tuple[str, pa.RecordBatch | None]:
    """``$n`` placeholders and one row of typed parameters in their order."""
    import pyarrow as pa
    from sqlalchemy.dialects.postgresql import psycopg

    from fti.sources.watermark import Watermark

    dialect: Any = psycopg.dialect
    compiled = statement.compile(dialect=dialect(paramstyle="numeric_dollar"))
    order = list(compiled.positiontup or [])
    if not order:
        return str(compiled), None
    missing = [name for name in order if name not in bound]
    if missing:
        raise ValidationError(f"the query needs parameter(s) {', '.join(dict.fromkeys(missing))}: pass them")
    arrays = []
    for name in order:
        value = bound[name]
        try:
            arrays.append(
                pa.array([value.to_scalar()]) if isinstance(value, Watermark) else pa.array([value])
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValidationError(
                f"query parameter {name!r}: cannot send a {type(value).__name__}: {exc}"
            ) from None
    return str(compiled), pa.record_batch(arrays, names=[f"p{i}" for i in range(len(order))])


def _converter(schema: pa.Schema) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """Drop the driver's field metadata and turn opaque ``numeric`` columns into decimals."""
    import pyarrow as pa

    fields = []
    casts: dict[int, pa.DataType] = {}
    for i, field in enumerate(schema):
        kind = field.type
        if isinstance(kind, pa.OpaqueType):
            target: pa.DataType = kind.storage_type
            meta = field.metadata or {}
            typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1") or -1)
            if kind.type_name == "numeric" and typmod >= 4:
                precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
                target = (
                    pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
                )
            casts[i] = target
            kind = target
        fields.append(pa.field(field.name, kind, field.nullable))
    clean = pa.schema(fields)

    def convert(batch: pa.RecordBatch) -> pa.RecordBatch:
        columns = list(batch.columns)
        for i, target in casts.items():
            storage = columns[i].storage  # type: ignore[attr-defined]
            columns[i] = storage.cast(target) if storage.type != target else storage
        return pa.RecordBatch.from_arrays(columns, schema=clean)

    return convert


def _message(exc: Exception) -> str:
    text = str(exc).strip()
    return text.split("\nQuery was:")[0].strip()
