"""On-demand features of feature views (issue 18).

``feature_views.on_demand``: the on-demand functions of a view version (import path, source
SHA-256, inputs, outputs, dropped inputs); ``feature_views.request_fields``: the columns a serving
request must send. Both NULL for views created before (none).

Revision ID: 0011_on_demand
Revises: 0010_model_evaluations
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType

revision = "0011_on_demand"
down_revision = "0010_model_evaluations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feature_views") as batch:
        batch.add_column(sa.Column("on_demand", JsonType, nullable=True))
        batch.add_column(sa.Column("request_fields", JsonType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_views") as batch:
        batch.drop_column("request_fields")
        batch.drop_column("on_demand")
