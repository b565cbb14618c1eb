"""Stream pipelines (issue 17): the state of each deployed stream pipeline's service.

Revision ID: 0016_stream_status
Revises: 0015_external_feature_groups
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import UtcDateTime

revision = "0016_stream_status"
down_revision = "0015_external_feature_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_status",
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("supervisor", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("restarts", sa.Integer, nullable=False),
        sa.Column("last_exit", sa.Text, nullable=True),
        sa.Column("next_start_at", UtcDateTime, nullable=True),
        sa.Column("heartbeat_at", UtcDateTime, nullable=True),
        sa.Column("lag", sa.BigInteger, nullable=True),
        sa.Column("processed", sa.BigInteger, nullable=False),
        sa.Column("late", sa.BigInteger, nullable=False),
        sa.Column("dead_letters", sa.BigInteger, nullable=False),
        sa.Column("watermark", UtcDateTime, nullable=True),
        sa.Column("freshness_ms", sa.Float, nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("pipeline_id", name="pk_stream_status"),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            ondelete="CASCADE",
            name="fk_stream_status_pipeline_id_pipelines",
        ),
    )


def downgrade() -> None:
    op.drop_table("stream_status")
