"""External feature groups (issue 17): a group read from a data source at query time.

``feature_groups.external``: ``{"source": {...}, "query": ..., "params": {...}}`` or NULL.

Revision ID: 0015_external_feature_groups
Revises: 0014_event_time_unit
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType

revision = "0015_external_feature_groups"
down_revision = "0014_event_time_unit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feature_groups") as batch:
        batch.add_column(sa.Column("external", JsonType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_groups") as batch:
        batch.drop_column("external")
