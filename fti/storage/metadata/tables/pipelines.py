"""Pipeline tables: declarations, runs, the scheduler's leader lease, event cursors and fired events."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from fti.storage.metadata.tables._base import JsonType, UtcDateTime, metadata

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("kind", String(16), nullable=False),  # feature | training | inference
    Column("function", String(255), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("source_digest", String(64), nullable=False),
    Column("schedule", JsonType, nullable=True),  # {"cron"|"every_seconds", "timezone"}
    Column("trigger", JsonType, nullable=True),  # {"type": "new_data"|"event", ...}
    Column("retries", Integer, nullable=False),
    Column("retry_backoff", Float, nullable=False),
    Column("timeout", Float, nullable=True),
    Column("concurrency", String(16), nullable=False),
    Column("missed", String(16), nullable=False),
    Column("signature", JsonType, nullable=False),
    Column("description", Text, nullable=False),
    Column("secrets", JsonType, nullable=True),  # names of the secrets a run receives
    Column("environment", JsonType, nullable=True),  # fti.pipelines.environments.EnvSpec, or None
    Column("paused", Boolean, nullable=False),
    Column("cursor", UtcDateTime, nullable=True),  # schedule fire times up to here are handled
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_pipelines_identity"),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),  # queued|running|succeeded|failed|timed_out|cancelled
    Column("trigger", String(16), nullable=False),  # manual|schedule|retry|new_data|event|backfill
    Column("trigger_key", String(255), nullable=True),  # one run per (slot/commit/event, attempt)
    Column("attempt", Integer, nullable=False),
    Column("retry_of", Integer, nullable=True),
    Column("params", JsonType, nullable=False),
    Column("window_start", UtcDateTime, nullable=True),
    Column("window_end", UtcDateTime, nullable=True),
    Column("event", JsonType, nullable=True),
    Column("source_digest", String(64), nullable=False),
    Column("queued_at", UtcDateTime, nullable=False),
    Column("not_before", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("owner", String(255), nullable=True),
    Column("host", String(255), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("log_keys", JsonType, nullable=True),
    Column("environment", JsonType, nullable=True),  # the environment the run ran in: digest, packages
    UniqueConstraint("pipeline_id", "trigger_key", "attempt", name="uq_pipeline_runs_slot"),
    Index("ix_pipeline_runs_status", "status"),
)

scheduler_leases = Table(
    "scheduler_leases",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

pipeline_cursors = Table(
    "pipeline_cursors",
    metadata,
    Column("pipeline_id", Integer, ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True),
    Column("position", BigInteger, nullable=False),  # last fg_commits.id / pipeline_events.id consumed
)

pipeline_events = Table(
    "pipeline_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("payload", JsonType, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)
