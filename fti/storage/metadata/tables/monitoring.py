"""Monitoring tables: monitors, their runs (one per evaluated window) and their alerts."""

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

monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("source", JsonType, nullable=False),  # {"kind": "deployment"|"feature_group", "name", "version"}
    Column("model", String(255), nullable=True),  # the model whose predictions and labels are judged
    Column("window_seconds", Float, nullable=False),
    Column("schedule", JsonType, nullable=True),  # {"cron", "timezone"} or null: run by hand only
    Column("config", JsonType, nullable=False),  # features, tests, thresholds, slices, performance, alert
    Column("reference", JsonType, nullable=False),  # description, artifact key and sha256 of the profile
    Column("pipeline", String(63), nullable=True),  # the built-in pipeline that schedules it
    Column("description", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_monitors_identity"),
)

monitor_runs = Table(
    "monitor_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("trigger", String(16), nullable=False),  # manual | schedule | backfill
    Column("status", String(16), nullable=False),  # ok | no_data | failed
    Column("rows", BigInteger, nullable=False),
    Column("dataset_drift", Boolean, nullable=False),
    Column("drifted", JsonType, nullable=False),  # names of the drifted columns
    Column(
        "summary", JsonType, nullable=False
    ),  # {column: {test, statistic, threshold, drifted}}, performance
    Column("error", Text, nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Index("ix_monitor_runs_window", "monitor_id", "window_start"),
)

monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", Integer, ForeignKey("monitor_runs.id", ondelete="SET NULL"), nullable=True),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # drift | performance
    Column("breaches", JsonType, nullable=False),  # what breached, with statistics and thresholds
    Column("status", String(16), nullable=False),  # delivered | suppressed (cooldown)
    Column("event_id", BigInteger, nullable=True),  # the pipeline event fired
    Column("webhook", JsonType, nullable=True),  # {url, attempts, status_code, error}
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_monitor_alerts_monitor", "monitor_id", "created_at"),
)
