"""The streaming domain's catalog records: the only module that touches ``stream_status``
(``fti.storage.metadata.tables.streaming``).

One row per deployed stream pipeline with a service: the scheduler that supervises it writes
the supervision columns (state, process, restarts, why it last ended, when it starts again), the
service itself its progress (heartbeat, lag, counters, watermark, freshness). Each writer
updates only its own columns, so neither overwrites the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from fti.storage.metadata.tables import stream_status
from fti.storage.metadata.tables._base import utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fti.storage.metadata.base import Catalog

SUPERVISION = ("state", "supervisor", "pid", "host", "started_at", "restarts", "last_exit", "next_start_at")
PROGRESS = ("heartbeat_at", "lag", "processed", "late", "dead_letters", "watermark", "freshness_ms")


@dataclass(frozen=True)
class StreamStatus:
    """The last known state of a stream pipeline's service."""

    pipeline_id: int
    state: str
    supervisor: str | None
    pid: int | None
    host: str | None
    started_at: datetime | None
    restarts: int
    last_exit: str | None
    next_start_at: datetime | None
    heartbeat_at: datetime | None
    lag: int | None
    processed: int
    late: int
    dead_letters: int
    watermark: datetime | None
    freshness_ms: float | None
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("state", *SUPERVISION[1:], *PROGRESS, "updated_at"):
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def _write(catalog: Catalog, pipeline_id: int, values: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValueError(f"not columns of this writer: {sorted(unknown)}")
    row = {**values, "updated_at": utcnow()}
    with catalog.engine.begin() as conn:
        done = conn.execute(
            update(stream_status).where(stream_status.c.pipeline_id == pipeline_id).values(**row)
        ).rowcount
    if done:
        return
    defaults = {"state": "starting", "restarts": 0, "processed": 0, "late": 0, "dead_letters": 0}
    try:
        with catalog.engine.begin() as conn:
            conn.execute(insert(stream_status).values(pipeline_id=pipeline_id, **{**defaults, **row}))
    except SqlIntegrityError:  # created concurrently by the other writer: update it
        with catalog.engine.begin() as conn:
            conn.execute(
                update(stream_status).where(stream_status.c.pipeline_id == pipeline_id).values(**row)
            )


def report_supervision(catalog: Catalog, pipeline_id: int, **values: Any) -> None:
    """Store the supervisor's view of a service (columns in :data:`SUPERVISION`)."""
    _write(catalog, pipeline_id, values, SUPERVISION)


def report_progress(catalog: Catalog, pipeline_id: int, **values: Any) -> None:
    """Store the service's own progress (columns in :data:`PROGRESS`)."""
    _write(catalog, pipeline_id, values, PROGRESS)


def get_status(catalog: Catalog, pipeline_ids: Iterable[int]) -> dict[int, StreamStatus]:
    """The status rows of these pipelines (missing: never started)."""
    ids = list(pipeline_ids)
    if not ids:
        return {}
    with catalog.engine.connect() as conn:
        rows = (
            conn.execute(select(stream_status).where(stream_status.c.pipeline_id.in_(ids))).mappings().all()
        )
    return {
        int(r["pipeline_id"]): StreamStatus(**{k: r[k] for k in StreamStatus.__dataclass_fields__})
        for r in rows
    }
