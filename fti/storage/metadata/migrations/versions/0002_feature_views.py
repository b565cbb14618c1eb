"""Feature views and training datasets (issue: feature views).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_views",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("query", JsonType, nullable=False),
        sa.Column("labels", JsonType, nullable=False),
        sa.Column("transformations", JsonType, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feature_views"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_feature_views_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "name", "version", name="uq_feature_views_identity"),
    )
    op.create_table(
        "training_datasets",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("feature_view_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("start_time", UtcDateTime, nullable=True),
        sa.Column("end_time", UtcDateTime, nullable=True),
        sa.Column("split", JsonType, nullable=False),
        sa.Column("input_versions", JsonType, nullable=False),
        sa.Column("transformation_stats", JsonType, nullable=False),
        sa.Column("row_counts", JsonType, nullable=False),
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("table_version", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_training_datasets"),
        sa.ForeignKeyConstraint(
            ["feature_view_id"],
            ["feature_views.id"],
            ondelete="CASCADE",
            name="fk_training_datasets_feature_view_id_feature_views",
        ),
        sa.UniqueConstraint("feature_view_id", "version", name="uq_training_datasets_version"),
    )


def downgrade() -> None:
    op.drop_table("training_datasets")
    op.drop_table("feature_views")
