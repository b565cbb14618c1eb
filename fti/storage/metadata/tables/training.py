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

# Files logged by a run (run.log_artifact, run.log_figure): stored in the artifact store under the
# run's prefix, each with its SHA-256 checked on every read (migration 0011).
run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("key", String(1024), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("logged_at", UtcDateTime, nullable=False),
    UniqueConstraint("run_id", "name", name="uq_run_artifacts_name"),
)
