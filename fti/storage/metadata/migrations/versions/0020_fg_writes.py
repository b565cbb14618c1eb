"""Cheap connects (issue 21): the writes of feature groups under way, one row from a write's start
to the catalog record of its offline commit, so ``fti.connect`` catches up only the groups a
writer left unfinished instead of opening every group's offline table.

Revision ID: 0020_fg_writes
Revises: 0019_statistics_state
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import UtcDateTime

revision = "0020_fg_writes"
down_revision = "0019_statistics_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fg_writes",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("feature_group_id", sa.Integer, nullable=False),
        sa.Column("writer", sa.String(255), nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fg_writes"),
        sa.ForeignKeyConstraint(
            ["feature_group_id"],
            ["feature_groups.id"],
            ondelete="CASCADE",
            name="fk_fg_writes_feature_group_id_feature_groups",
        ),
    )
    op.create_index("ix_fg_writes_feature_group_id", "fg_writes", ["feature_group_id"])
    # A writer of an older fti may have died leaving a group behind, unmarked: one write "by no
    # process" (fti._process.NOBODY, always gone) per group has the first connect catch each up.
    groups = sa.table("feature_groups", sa.column("id", sa.Integer))
    writes = sa.table(
        "fg_writes",
        sa.column("feature_group_id", sa.Integer),
        sa.column("writer", sa.String),
        sa.column("started_at", UtcDateTime),
    )
    op.execute(
        writes.insert().from_select(
            ["feature_group_id", "writer", "started_at"],
            sa.select(groups.c.id, sa.literal("catalog::0:0"), sa.literal(datetime.now(UTC), UtcDateTime)),
        )
    )


def downgrade() -> None:
    op.drop_index("ix_fg_writes_feature_group_id", table_name="fg_writes")
    op.drop_table("fg_writes")
