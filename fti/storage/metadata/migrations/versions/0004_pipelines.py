"""Pipelines, runs and the scheduler lease (issue: pipelines).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("function", sa.String(255), nullable=False),
        sa.Column("source_path", sa.Text, nullable=False),
        sa.Column("source_digest", sa.String(64), nullable=False),
        sa.Column("schedule", JsonType, nullable=True),
        sa.Column("trigger", JsonType, nullable=True),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("retry_backoff", sa.Float, nullable=False),
        sa.Column("timeout", sa.Float, nullable=True),
        sa.Column("concurrency", sa.String(16), nullable=False),
        sa.Column("missed", sa.String(16), nullable=False),
        sa.Column("signature", JsonType, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("cursor", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipelines"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_pipelines_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_pipelines_identity"),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("trigger_key", sa.String(255), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("retry_of", sa.Integer, nullable=True),
        sa.Column("params", JsonType, nullable=False),
        sa.Column("window_start", UtcDateTime, nullable=True),
        sa.Column("window_end", UtcDateTime, nullable=True),
        sa.Column("event", JsonType, nullable=True),
        sa.Column("source_digest", sa.String(64), nullable=False),
        sa.Column("queued_at", UtcDateTime, nullable=False),
        sa.Column("not_before", UtcDateTime, nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("log_keys", JsonType, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            ondelete="CASCADE",
            name="fk_pipeline_runs_pipeline_id_pipelines",
        ),
        sa.UniqueConstraint("pipeline_id", "trigger_key", "attempt", name="uq_pipeline_runs_slot"),
    )
    op.create_index("ix_pipeline_runs_status", "pipeline_runs", ["status"])
    op.create_table(
        "scheduler_leases",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("acquired_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("project_id", name="pk_scheduler_leases"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            ondelete="CASCADE",
            name="fk_scheduler_leases_project_id_projects",
        ),
    )
    op.create_table(
        "pipeline_cursors",
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pipeline_id", name="pk_pipeline_cursors"),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            ondelete="CASCADE",
            name="fk_pipeline_cursors_pipeline_id_pipelines",
        ),
    )
    op.create_table(
        "pipeline_events",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("payload", JsonType, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_events"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_pipeline_events_project_id_projects"
        ),
    )


def downgrade() -> None:
    op.drop_table("pipeline_events")
    op.drop_table("pipeline_cursors")
    op.drop_table("scheduler_leases")
    op.drop_index("ix_pipeline_runs_status", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
    op.drop_table("pipelines")
