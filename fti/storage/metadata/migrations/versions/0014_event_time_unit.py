"""The unit of integer event times of a feature group (issue 20: Hopsworks habits).

``feature_groups.event_time_unit`` (``s`` | ``ms`` | ``us`` | ``ns``, or null): an insert whose
event-time column holds integers reads them as epoch times in this unit (Hopsworks' feature groups
take epoch milliseconds). Existing groups have none: integers are then detected by magnitude.

Revision ID: 0014_event_time_unit
Revises: 0013_embedding_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_event_time_unit"
down_revision = "0013_embedding_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feature_groups") as batch:
        batch.add_column(sa.Column("event_time_unit", sa.String(2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_groups") as batch:
        batch.drop_column("event_time_unit")
