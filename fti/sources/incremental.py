"""Incremental reads: the rows of a source past a stored watermark, and the commit that moves it.

``source.read_incremental(..., cursor="ts")`` returns an :class:`IncrementalRead`. Use it as a
context manager around the write of its rows::

    with orders.read_incremental("SELECT * FROM orders", cursor="updated_at", name="orders") as batch:
        fg.insert(batch.table)   # or fg.insert_stream(batch.batches(), write_mode="upsert")

The cursor moves only when the block exits without an exception, after every row was read; a
failed insert (or any exception) leaves it where it was, so a retried run reads the same rows
again and nothing is skipped. ``batch.commit()`` does the same explicitly, without ``with``.

**The boundary.** A read returns the rows whose cursor value is ``>=`` the stored watermark, not
``>``: rows that share the last value can arrive *after* a read (two transactions committing the
same timestamp, a coarse clock), and ``>`` would skip them forever. To not deliver the rows at
exactly the watermark twice, the cursor also stores a digest of each row it delivered at that
value, and the next read drops those rows again; a new row with the same value is delivered, and
a changed row too (its digest differs; the feature group's upsert by key and event time replaces
it). So every row is delivered, and an unchanged row once. When more than
:data:`MAX_BOUNDARY_ROWS` rows share the last value (a date column), their digests are not kept
and they are delivered again on the next read: still nothing skipped, and re-inserting them is
idempotent because feature groups upsert by (key, event time).

Write the rows with an upsert (``fg.insert`` does; ``fg.insert_stream`` needs
``write_mode="upsert"``): a run that crashes after its insert but before the cursor moved reads
those rows again, and only an upsert by (key, event time) makes that harmless.

Rows whose cursor value is NULL are never read incrementally. The watermark must only grow for
new rows: a row inserted later with an *older* value than the stored one is not read (use a
column assigned at commit time, e.g. an ``updated_at`` set by the database).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.sources import records
from fti.sources.watermark import Watermark, watermark_kind

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.project import Project

MAX_BOUNDARY_ROWS = 10_000

Fetch = Callable[[Watermark | None], Iterator["pa.RecordBatch"]]
"""Reads the source's rows with cursor >= the watermark (all non-null rows when None); yields at
least one batch (an empty one for no rows) so the schema is known."""


def row_digests(batch: pa.RecordBatch | pa.Table) -> list[str]:
    """A 128-bit digest of each row's values (exact: timestamps as ticks, decimals as text)."""
    import orjson
    import pyarrow as pa
    import pyarrow.types as t

    columns = []
    for column in batch.columns:
        kind = column.type
        if t.is_timestamp(kind) or t.is_duration(kind) or t.is_time64(kind) or t.is_date64(kind):
            column = column.cast(pa.int64())
        elif t.is_date32(kind) or t.is_time32(kind):
            column = column.cast(pa.int32())
        elif t.is_decimal(kind):
            column = column.cast(pa.string())
        columns.append(column.to_pylist())

    def default(value: Any) -> Any:
        return value.hex() if isinstance(value, bytes | bytearray) else str(value)

    return [
        hashlib.blake2b(orjson.dumps(list(values), default=default), digest_size=16).hexdigest()
        for values in zip(*columns, strict=True)
    ]


class IncrementalRead:
    """The rows of one source after its stored cursor; :meth:`commit` advances the cursor.

    Read the rows once, as :attr:`table` or as a stream of :meth:`batches`, then commit (or leave
    a ``with`` block without an exception).
    """

    def __init__(self, project: Project, name: str, column: str, source: str, fetch: Fetch) -> None:
        self._project = project
        self.name = name
        """The cursor's name in the catalog."""
        self.column = column
        """The watermark column."""
        self._source = source
        self._fetch = fetch
        with project.backends.catalog.engine.connect() as conn:
            self._stored = records.load(conn, project.id, name)
        stored = self._stored
        self.start: Watermark | None = None if stored is None else Watermark.from_json(stored.value)
        """The committed watermark this read starts from (None: the first read, every row)."""
        self._start_boundary: frozenset[str] | None = (
            frozenset() if stored is None else None if stored.boundary is None else frozenset(stored.boundary)
        )
        self._max: pa.Scalar | None = None if self.start is None else self.start.to_scalar()
        self._at_max: set[str] | None = None if self._start_boundary is None else set(self._start_boundary)
        self._state = "new"  # new -> reading -> read -> committed
        self._rows = 0
        self._table: pa.Table | None = None
        self._schema: pa.Schema | None = None
        self._committed: Watermark | None = None

    @property
    def num_rows(self) -> int:
        """Rows delivered so far."""
        return self._rows

    @property
    def end(self) -> Watermark | None:
        """The watermark after the rows delivered so far (what :meth:`commit` stores)."""
        if self._max is None:
            return None
        if self.start is not None and self._rows == 0:
            return self.start
        return Watermark.from_scalar(self._max, self.column)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Stream the new rows as record batches (once); memory stays at about one batch."""
        if self._state != "new":
            raise ValidationError(
                f"cursor {self.name!r}: the rows were already read; an incremental read can be read once"
            )
        self._state = "reading"
        for batch in self._fetch(self.start):
            self._schema = batch.schema
            kept = self._track(batch)
            if kept.num_rows:
                yield kept
        self._state = "read"

    @property
    def table(self) -> pa.Table:
        """All new rows as one Arrow table (read on first access)."""
        if self._table is None:
            import pyarrow as pa

            if self._state != "new":
                raise ValidationError(
                    f"cursor {self.name!r}: the rows are being streamed with batches(); use one or the other"
                )
            from fti.sources.base import collect

            pieces = list(self.batches())
            self._table = collect(iter(pieces)) if pieces else pa.Table.from_batches([], schema=self._schema)
        return self._table

    def _track(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Drop the rows delivered before at the start value; follow the maximum and its rows."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.column not in batch.schema.names:
            raise ValidationError(
                f"cursor {self.name!r}: the rows have no column {self.column!r} "
                f"(columns: {', '.join(batch.schema.names)}); select it"
            )
        if not batch.num_rows:  # (an empty SQLAlchemy result has NULL-typed columns)
            return batch
        column = batch.column(self.column)
        watermark_kind(column.type, self.column)
        if self.start is not None and self._start_boundary:
            at_start = pc.equal(column, self.start.to_scalar().cast(column.type))
            positions = pc.indices_nonzero(pc.fill_null(at_start, False))
            if len(positions):
                seen = [d in self._start_boundary for d in row_digests(batch.take(positions))]
                keep = [True] * batch.num_rows
                for position, duplicate in zip(positions.to_pylist(), seen, strict=True):
                    keep[position] = not duplicate
                batch = batch.filter(pa.array(keep))
                column = batch.column(self.column)
        if not batch.num_rows:
            return batch
        largest = pc.max(column)
        if not largest.is_valid:
            return batch
        current = None if self._max is None else self._max.cast(column.type)
        at_largest = batch.filter(pc.fill_null(pc.equal(column, largest), False))
        if current is None or pc.greater(largest, current).as_py():
            self._max = largest
            self._at_max = set()
            at_max = True
        else:
            at_max = bool(pc.equal(largest, current).as_py())
        if at_max and self._at_max is not None:
            self._at_max.update(row_digests(at_largest))
            if len(self._at_max) > MAX_BOUNDARY_ROWS:
                self._at_max = None  # too many to remember: they are read again next time
        self._rows += batch.num_rows
        return batch

    def commit(self) -> Watermark | None:
        """Store the new watermark: call after the rows were written (the ``with`` block does).

        Nothing read means nothing to advance. Two runs committing the same cursor both count:
        the larger watermark wins, and at an equal one the delivered rows are merged.

        Returns:
            The stored watermark.

        Raises:
            ValidationError: the rows were only partly read (the stream was not exhausted).
        """
        if self._state == "reading":
            raise ValidationError(
                f"cursor {self.name!r} was not advanced: only part of the rows were read; read every "
                "batch (or .table) before the block ends"
            )
        if self._state == "committed":
            return self._committed
        self._state = "committed"
        self._committed = self._store() if self._rows else self.start
        return self._committed

    def _store(self) -> Watermark:
        from datetime import UTC, datetime

        assert self._max is not None
        value = Watermark.from_scalar(self._max, self.column)
        boundary = None if self._at_max is None else sorted(self._at_max)
        engine = self._project.backends.catalog.engine
        stored = self._stored
        while True:
            if stored is None:
                if records.create(
                    engine,
                    self._project.id,
                    self.name,
                    source=self._source,
                    column=self.column,
                    value=value.to_json(),
                    boundary=boundary,
                    rows=self._rows,
                    now=datetime.now(UTC),
                ):
                    return value
            else:
                merged_value, merged_boundary = _merge(stored, value, boundary)
                if records.advance(
                    engine,
                    self._project.id,
                    self.name,
                    revision=stored.revision,
                    source=self._source,
                    value=merged_value.to_json(),
                    boundary=merged_boundary,
                    rows_total=stored.rows_total + self._rows,
                    now=datetime.now(UTC),
                ):
                    return merged_value
            with engine.connect() as conn:  # another run moved it in between: merge with that
                stored = records.load(conn, self._project.id, self.name)

    def __enter__(self) -> IncrementalRead:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()

    def __repr__(self) -> str:
        return f"IncrementalRead(name={self.name!r}, column={self.column!r}, start={self.start}, rows={self._rows})"


def _merge(
    stored: records.CursorRow, value: Watermark, boundary: list[str] | None
) -> tuple[Watermark, list[str] | None]:
    """The position after both the stored one and ours: the larger, or the union at a tie."""
    import pyarrow.compute as pc

    theirs = Watermark.from_json(stored.value)
    ours_scalar = value.to_scalar()
    theirs_scalar = theirs.to_scalar().cast(ours_scalar.type)
    if pc.greater(theirs_scalar, ours_scalar).as_py():
        return theirs, stored.boundary
    if pc.greater(ours_scalar, theirs_scalar).as_py():
        return value, boundary
    if boundary is None or stored.boundary is None:
        return value, None
    union = sorted(set(boundary) | set(stored.boundary))
    return value, union if len(union) <= MAX_BOUNDARY_ROWS else None
