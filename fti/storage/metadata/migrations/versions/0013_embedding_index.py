"""Embedding indexes of feature groups (issue 18).

``feature_groups.embedding_index``: the ``vector[N]`` column and metric of the group's embedding
index (kept in the vector store role), or NULL.

Revision ID: 0013_embedding_index
Revises: 0012_pipeline_environments
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType

revision = "0013_embedding_index"
down_revision = "0012_pipeline_environments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feature_groups") as batch:
        batch.add_column(sa.Column("embedding_index", JsonType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_groups") as batch:
        batch.drop_column("embedding_index")
