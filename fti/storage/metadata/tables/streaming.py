"""Streaming tables: the state of each deployed stream pipeline's long-running service."""

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Integer, String, Table, Text

from fti.storage.metadata.tables._base import UtcDateTime, metadata

stream_status = Table(
    "stream_status",
    metadata,
    Column("pipeline_id", Integer, ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True),
    # written by the scheduler that supervises the service
    Column("state", String(16), nullable=False),  # starting | running | backoff | stopped
    Column("supervisor", String(255), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("host", String(255), nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("restarts", Integer, nullable=False),
    Column("last_exit", Text, nullable=True),  # why the service last ended: exit status, stderr tail
    Column("next_start_at", UtcDateTime, nullable=True),
    # written by the service itself
    Column("heartbeat_at", UtcDateTime, nullable=True),
    Column("lag", BigInteger, nullable=True),  # source messages not yet acknowledged
    Column("processed", BigInteger, nullable=False),
    Column("late", BigInteger, nullable=False),
    Column("dead_letters", BigInteger, nullable=False),
    Column("watermark", UtcDateTime, nullable=True),
    Column("freshness_ms", Float, nullable=True),  # appended -> written online, last batch
    Column("updated_at", UtcDateTime, nullable=False),
)
