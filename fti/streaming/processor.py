"""Running a stream pipeline: read, decode, aggregate, write online + offline, checkpoint, ack.

One :meth:`StreamProcessor.step` handles one batch of messages, in an order that makes a crash
at any point harmless (at-least-once delivery, exactly-once effect on the windows):

1. read up to ``batch_size`` messages (first those a previous run left unacknowledged);
2. decode them with the declared schema; a message that does not fit (a missing field, a value
   that is not its dtype, a naive time) is a *dead letter*: recorded with its reason, never a crash;
3. apply the pipeline's function (if any) and the windows (:mod:`fti.streaming.aggregator`);
4. write the changed rows through the output group's push path (:mod:`fti.streaming.push`):
   online at once, durably buffered for the offline commit;
5. checkpoint the accepted events, watermark and dead letters (:mod:`fti.streaming.state`);
6. acknowledge the messages.

A crash before 5 redelivers messages whose rows are recomputed identically (rows are a function
of the accepted events); after 5, redelivered messages are recognised by their ids and skipped.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, SchemaError, ValidationError
from fti.streaming.aggregator import Aggregator, Event
from fti.streaming.state import StreamState
from fti.streaming.values import ValueProblem, text_converters

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup
    from fti.project import Project
    from fti.sources.streams import Message, StreamReader
    from fti.streaming.spec import StreamSpec

log = logging.getLogger("fti.streaming")

MESSAGE_ID = "__fti_message_id"
"""The column holding each event's message id in the table a pipeline's function receives."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class StreamProcessor:
    """Runs stream pipeline ``name`` of ``project`` (see the module docstring).

    Args:
        project: The project of the output group (and of the pipeline).
        name: The pipeline's name: its consumer name in the group and its checkpoint's name.
        spec: What to compute.
        pipeline_id: The deployed pipeline's catalog id, to report progress to (None: don't).
        commit_every_rows, commit_every_seconds: The offline micro-batch policy of the output.
        commit_in_process: Run the output's committer in a thread of this process (True), or
            leave it to another process of the project (False: a stream service starts one, so
            commits never pause the loop).
        block_ms: How long a read waits for new messages.
    """

    def __init__(
        self,
        project: Project,
        name: str,
        spec: StreamSpec,
        *,
        pipeline_id: int | None = None,
        commit_every_rows: int = 10_000,
        commit_every_seconds: float = 5.0,
        block_ms: int = 100,
        status_interval: float = 1.0,
        commit_in_process: bool = True,
    ) -> None:
        self.project = project
        self.name = name
        self.spec = spec
        self.pipeline_id = pipeline_id
        self.block_ms = block_ms
        self.status_interval = status_interval
        self._commit = (commit_every_rows, commit_every_seconds)
        self._commit_in_process = commit_in_process
        self.aggregator = Aggregator(
            spec.windows, spec.aggregations, allowed_lateness_us=spec.allowed_lateness_us
        )
        self.counters = {"processed": 0, "late": 0, "duplicates": 0}
        self.freshness_ms: float | None = None
        self._converters = text_converters(spec.schema)
        self._state: StreamState | None = None
        self._reader: StreamReader | None = None
        self._group: FeatureGroup | None = None
        self._reported = 0.0
        self._failpoint = _failpoint()

    # --- lifecycle ------------------------------------------------------------------------------
    def open(self) -> StreamProcessor:
        """Lock and load the checkpoint, create the output group, connect to the stream."""
        from fti.streaming import committer

        path = self.project.settings.home / "streams" / self.project.name / f"{self.name}.db"
        self._state = StreamState(Path(path), self.spec.fingerprint())
        if self._state.reset:
            log.warning("stream pipeline %r changed its windows: its window state starts over", self.name)
        events, watermark, counters = self._state.load()
        self.aggregator.restore(events, watermark)
        self.counters.update(counters)
        spec = self.spec
        store = self.project.feature_store
        try:  # an existing group (e.g. made by a batch pipeline of the same windows) keeps its text
            store.get_feature_group(spec.output, spec.output_version)
            description = None
        except NotFoundError:
            description = f"windows of stream pipeline {self.name}: {', '.join(str(w) for w in spec.windows)}"
        self._group = store.get_or_create_feature_group(
            spec.output,
            spec.output_version,
            primary_key=list(spec.key),
            event_time=spec.event_time,
            online_enabled=True,
            features=spec.output_features(),
            description=description,
        )
        if self._commit_in_process:
            committer.start(self.project, every_rows=self._commit[0], every_seconds=self._commit[1])
        else:
            committer.delegate(self.project)
        self._reader = spec.source.open(consumer=self.name)
        return self

    def close(self) -> None:
        from fti.streaming import committer

        committer.stop(self.project)  # commits the buffered output rows it can
        if self._reader is not None:
            self._reader.close()
        if self._state is not None:
            self._state.close()

    def __enter__(self) -> StreamProcessor:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, stop: threading.Event) -> None:
        """Process batches until ``stop`` is set."""
        while not stop.is_set():
            self.step()
            if time.monotonic() - self._reported >= self.status_interval:
                self.report()

    # --- one batch ------------------------------------------------------------------------------
    def step(self) -> int:
        """Handle one batch; returns the number of messages it acknowledged."""
        assert self._reader is not None and self._state is not None and self._group is not None
        messages = self._reader.read(self.spec.batch_size, self.block_ms)
        if not messages:
            return 0
        table, dead = self._decode(messages)
        events, dead_rows = self._events(table)
        dead.extend(dead_rows)
        applied = self.aggregator.apply(events)
        if applied.rows:
            from fti.streaming import push

            push.write(self._group, self._output(applied.rows))
            now_ms = time.time() * 1000
            self.freshness_ms = max(now_ms - m.appended_ms for m in messages)
        self._hit("after_write")
        self.counters["processed"] += len(applied.accepted)
        self.counters["late"] += len(applied.late)
        self.counters["duplicates"] += applied.duplicates
        if applied.late:
            log.warning(
                "stream pipeline %r dropped %d event(s) later than the allowed lateness",
                self.name,
                len(applied.late),
            )
        self._state.commit(
            applied.accepted,
            evict_before=applied.evicted_before,
            watermark=self.aggregator.watermark,
            counters=self.counters,
            dead=dead,
        )
        self._hit("after_checkpoint")
        self._reader.ack([m.id for m in messages])
        return len(messages)

    def _decode(self, messages: list[Message]) -> tuple[pa.Table, list[tuple[str, str, dict[str, str]]]]:
        import pyarrow as pa

        from fti.types import arrow_type

        names = list(self.spec.schema)
        columns: list[list[Any]] = [[] for _ in names]
        ids: list[str] = []
        dead: list[tuple[str, str, dict[str, str]]] = []
        converters = [self._converters[n] for n in names]
        for message in messages:
            fields = message.fields
            try:
                values = [convert(fields[n]) for n, convert in zip(names, converters, strict=True)]
            except KeyError as exc:
                dead.append((message.id, f"missing field {exc.args[0]!r}", fields))
                continue
            except ValueProblem as exc:
                bad = next(n for n, c in zip(names, converters, strict=True) if not _parses(c, fields[n]))
                dead.append((message.id, f"field {bad!r}: {exc}", fields))
                continue
            ids.append(message.id)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        arrays = [pa.array(c, arrow_type(self.spec.schema[n])) for n, c in zip(names, columns, strict=True)]
        table = pa.table([*arrays, pa.array(ids, pa.string())], names=[*names, MESSAGE_ID])
        return table, dead

    def _events(self, table: pa.Table) -> tuple[list[Event], list[tuple[str, str, dict[str, str]]]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        spec = self.spec
        if spec.transform is not None and table.num_rows:
            table = _transformed(spec.transform, table)
        needed = [*spec.key, spec.event_time, *spec.value_columns]
        missing = [c for c in needed if c not in table.column_names]
        if missing:
            raise SchemaError(f"stream pipeline {self.name!r}: the events lack column(s) {missing}")
        ids = table.column(MESSAGE_ID).to_pylist()
        times = (
            pc.cast(table.column(spec.event_time), pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
        )
        keys = list(zip(*(table.column(k).to_pylist() for k in spec.key), strict=True))
        values = list(
            zip(
                *(pc.cast(table.column(c), pa.float64()).to_pylist() for c in spec.value_columns), strict=True
            )
        )
        if not spec.value_columns:
            values = [()] * table.num_rows
        events: list[Event] = []
        dead: list[tuple[str, str, dict[str, str]]] = []
        for message_id, key, t, vals in zip(ids, keys, times, values, strict=True):
            if t is None or None in key or None in vals:
                dead.append((message_id, f"null in {needed} after the pipeline's function", {}))
                continue
            events.append(Event(message_id, key, t, vals))
        return events, dead

    def _output(self, rows: dict[tuple[tuple[Any, ...], int], list[Any]]) -> pa.Table:
        import pyarrow as pa

        from fti.types import arrow_type

        spec = self.spec
        items = sorted(rows.items(), key=lambda item: item[0][1])
        columns: list[pa.Array] = []
        for i, name in enumerate(spec.key):
            columns.append(pa.array([k[i] for (k, _), _ in items], arrow_type(spec.schema[name])))
        delay = spec.publish_delay_us
        columns.append(
            pa.array([r + delay for (_, r), _ in items], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        )
        for j, feature in enumerate(spec.output_features()[len(spec.key) + 1 :]):
            columns.append(pa.array([v[j] for _, v in items], arrow_type(feature.dtype)))
        return pa.table(columns, names=[f.name for f in spec.output_features()])

    # --- reporting ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Counters, watermark, lag and dead letters, as reported to the catalog."""
        assert self._state is not None and self._reader is not None
        dead, _ = self._state.dead_letters(0)
        watermark = self.aggregator.watermark
        return {
            "lag": self._reader.lag(),
            "processed": self.counters["processed"],
            "late": self.counters["late"],
            "dead_letters": dead,
            "watermark": None if watermark is None else _EPOCH + timedelta(microseconds=watermark),
            "freshness_ms": self.freshness_ms,
        }

    def dead_letters(self, limit: int = 20) -> tuple[int, list[dict[str, Any]]]:
        assert self._state is not None
        return self._state.dead_letters(limit)

    def report(self) -> None:
        """Store :meth:`status` on the deployed pipeline's status row (a catalog hiccup is logged)."""
        from fti.errors import FtiError
        from fti.streaming import records

        self._reported = time.monotonic()
        if self.pipeline_id is None:
            return
        try:
            records.report_progress(
                self.project.backends.catalog,
                self.pipeline_id,
                heartbeat_at=datetime.now(UTC),
                **self.status(),
            )
        except (FtiError, OSError) as exc:
            log.warning("stream pipeline %r could not report its progress: %s", self.name, exc)

    def _hit(self, point: str) -> None:
        """Test hook: ``FTI_STREAM_FAILPOINT=after_write:3`` kills the process (SIGKILL) at the
        third batch to reach that point, to test recovery between the steps."""
        if self._failpoint is not None and self._failpoint[0] == point:
            self._failpoint[1] -= 1
            if self._failpoint[1] <= 0:
                os.kill(os.getpid(), signal.SIGKILL)


def _failpoint() -> list[Any] | None:
    raw = os.environ.get("FTI_STREAM_FAILPOINT")
    if not raw:
        return None
    point, _, count = raw.partition(":")
    return [point, int(count or 1)]


def _parses(convert: Any, value: str) -> bool:
    try:
        convert(value)
    except ValueProblem:
        return False
    return True


def _transformed(transform: Any, table: pa.Table) -> pa.Table:
    import pyarrow as pa

    from fti.features._frames import to_arrow

    result = transform(table)
    out = to_arrow(result, what="the stream pipeline function's result")
    if MESSAGE_ID not in out.column_names:
        if out.num_rows != table.num_rows:
            raise ValidationError(
                f"the stream pipeline's function returned {out.num_rows} rows for {table.num_rows} events "
                f"and dropped the {MESSAGE_ID!r} column: keep that column when you filter or add rows"
            )
        out = out.append_column(MESSAGE_ID, table.column(MESSAGE_ID))
    return out if isinstance(out, pa.Table) else pa.table(out)
