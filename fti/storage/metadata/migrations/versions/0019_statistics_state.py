"""Incremental statistics (issue 20): the mergeable statistics state of each feature group's
latest version (one row per group, replaced as commits add rows).

Revision ID: 0019_statistics_state
Revises: 0018_rollouts
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import UtcDateTime

revision = "0019_statistics_state"
down_revision = "0018_rollouts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fg_statistics_state",
        sa.Column("feature_group_id", sa.Integer, nullable=False),
        sa.Column("delta_version", sa.BigInteger, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("feature_group_id", name="pk_fg_statistics_state"),
        sa.ForeignKeyConstraint(
            ["feature_group_id"],
            ["feature_groups.id"],
            ondelete="CASCADE",
            name="fk_fg_statistics_state_feature_group_id_feature_groups",
        ),
    )


def downgrade() -> None:
    op.drop_table("fg_statistics_state")
