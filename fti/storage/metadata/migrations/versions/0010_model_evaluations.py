"""Model evaluations (issue 23: evaluation on data, slices, fairness, a gate that judges them).

``model_evaluations``: numbered evaluations of a model version (overall metrics, per-slice
metrics with row counts, fairness per sensitive feature, a baseline scored on the same rows).

Revision ID: 0010_model_evaluations
Revises: 0009_monitoring
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType, UtcDateTime

revision = "0010_model_evaluations"
down_revision = "0009_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_evaluations",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("model_version_id", sa.Integer, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("source", JsonType, nullable=False),
        sa.Column("settings", JsonType, nullable=False),
        sa.Column("metrics", JsonType, nullable=False),
        sa.Column("slices", JsonType, nullable=False),
        sa.Column("fairness", JsonType, nullable=False),
        sa.Column("baseline", JsonType, nullable=True),
        sa.Column("scorer", sa.String(32), nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_evaluations"),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            ondelete="CASCADE",
            name="fk_model_evaluations_model_version_id_model_versions",
        ),
        sa.UniqueConstraint("model_version_id", "number", name="uq_model_evaluations_number"),
    )


def downgrade() -> None:
    op.drop_table("model_evaluations")
