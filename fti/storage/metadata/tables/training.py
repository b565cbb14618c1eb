"""Training tables: runs, their params and their metric step series (created by migration 0003)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from fti.storage.metadata.tables._base import JsonType, UtcDateTime, metadata

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),  # running | finished | failed
    Column("start_time", UtcDateTime, nullable=False),
    Column("end_time", UtcDateTime, nullable=True),
    Column("error", Text, nullable=True),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("python_version", String(64), nullable=False),
    Column("packages", JsonType, nullable=False),  # {"distribution": "version"}
    Column("created_by", String(255), nullable=False),
)

run_params = Table(
    "run_params",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(255), nullable=False),
    # JSON text: a JSON column would let SQLite's numeric affinity turn 1.0 into 1
    Column("value", Text, nullable=False),
    UniqueConstraint("run_id", "key", name="uq_run_params_key"),
)

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("logged_at", UtcDateTime, nullable=False),
    UniqueConstraint("run_id", "key", "step", name="uq_run_metrics_step"),
)
