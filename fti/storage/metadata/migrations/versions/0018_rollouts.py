"""Safe rollouts (issue 14): canary rollouts, their steps, the servers' per-variant counters.

``rollouts``: a canary rollout of a deployment as a state machine the scheduler advances;
``rollout_events``: every step with the figures that justified it; ``variant_stats``: each server
worker's cumulative requests, errors and latency histogram per deployment, variant and version,
which the scheduler reads to judge the gates across every server.

Revision ID: 0018_rollouts
Revises: 0017_registry_habits
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType, UtcDateTime

revision = "0018_rollouts"
down_revision = "0017_registry_habits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("deployment", sa.String(63), nullable=False),
        sa.Column("candidate", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(63), nullable=False),
        sa.Column("steps", JsonType, nullable=False),
        sa.Column("every_s", sa.Float, nullable=False),
        sa.Column("gates", JsonType, nullable=False),
        sa.Column("min_requests", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("step_started_at", UtcDateTime, nullable=False),
        sa.Column("next_at", UtcDateTime, nullable=False),
        sa.Column("baseline", JsonType, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_rollouts_project_id_projects"
        ),
    )
    op.create_index("ix_rollouts_deployment", "rollouts", ["project_id", "deployment"])
    op.create_table(
        "rollout_events",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("rollout_id", sa.Integer, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("percent", sa.Float, nullable=False),
        sa.Column("figures", JsonType, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_events"),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], ondelete="CASCADE", name="fk_rollout_events_rollout_id_rollouts"
        ),
    )
    op.create_index("ix_rollout_events_rollout", "rollout_events", ["rollout_id", "id"])
    op.create_table(
        "variant_stats",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("server", sa.String(255), nullable=False),
        sa.Column("deployment", sa.String(63), nullable=False),
        sa.Column("variant", sa.String(63), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("latency", JsonType, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_variant_stats"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_variant_stats_project_id_projects"
        ),
        sa.UniqueConstraint(
            "project_id", "server", "deployment", "variant", "model_version", name="uq_variant_stats_key"
        ),
    )
    op.create_index("ix_variant_stats_deployment", "variant_stats", ["project_id", "deployment"])


def downgrade() -> None:
    op.drop_table("variant_stats")
    op.drop_table("rollout_events")
    op.drop_table("rollouts")
