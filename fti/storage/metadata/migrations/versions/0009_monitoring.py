"""Monitors, their runs and their alerts (issue 13: monitoring).

Revision ID: 0009_monitoring
Revises: 0008_roles_tags
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType, UtcDateTime

revision = "0009_monitoring"
down_revision = "0008_roles_tags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("source", JsonType, nullable=False),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("window_seconds", sa.Float, nullable=False),
        sa.Column("schedule", JsonType, nullable=True),
        sa.Column("config", JsonType, nullable=False),
        sa.Column("reference", JsonType, nullable=False),
        sa.Column("pipeline", sa.String(63), nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitors"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_monitors_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_monitors_identity"),
    )
    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("monitor_id", sa.Integer, nullable=False),
        sa.Column("window_start", UtcDateTime, nullable=False),
        sa.Column("window_end", UtcDateTime, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("dataset_drift", sa.Boolean, nullable=False),
        sa.Column("drifted", JsonType, nullable=False),
        sa.Column("summary", JsonType, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_runs"),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitors.id"], ondelete="CASCADE", name="fk_monitor_runs_monitor_id_monitors"
        ),
    )
    op.create_index("ix_monitor_runs_window", "monitor_runs", ["monitor_id", "window_start"])
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("monitor_id", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("window_start", UtcDateTime, nullable=False),
        sa.Column("window_end", UtcDateTime, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("breaches", JsonType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=True),
        sa.Column("webhook", JsonType, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_alerts"),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitors.id"], ondelete="CASCADE", name="fk_monitor_alerts_monitor_id_monitors"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["monitor_runs.id"], ondelete="SET NULL", name="fk_monitor_alerts_run_id_monitor_runs"
        ),
    )
    op.create_index("ix_monitor_alerts_monitor", "monitor_alerts", ["monitor_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_monitor_alerts_monitor", "monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_index("ix_monitor_runs_window", "monitor_runs")
    op.drop_table("monitor_runs")
    op.drop_table("monitors")
