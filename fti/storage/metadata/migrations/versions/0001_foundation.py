"""Foundation: projects, feature groups, feature-group commits.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.UniqueConstraint("name", name="uq_projects_name"),
    )
    op.create_table(
        "feature_groups",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("primary_key", JsonType, nullable=False),
        sa.Column("event_time", sa.String(255), nullable=True),
        sa.Column("online_enabled", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("features", JsonType, nullable=True),
        sa.Column("expectation_suite", JsonType, nullable=True),
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feature_groups"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_feature_groups_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "name", "version", name="uq_feature_groups_identity"),
        sa.UniqueConstraint("table_name", name="uq_feature_groups_table_name"),
    )
    op.create_table(
        "fg_commits",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("feature_group_id", sa.Integer, nullable=False),
        sa.Column("delta_version", sa.BigInteger, nullable=False),
        sa.Column("committed_at", UtcDateTime, nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("rows_inserted", sa.BigInteger, nullable=False),
        sa.Column("validation_status", sa.String(16), nullable=False),
        sa.Column("validation_report", JsonType, nullable=True),
        sa.Column("statistics", JsonType, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_fg_commits"),
        sa.ForeignKeyConstraint(
            ["feature_group_id"],
            ["feature_groups.id"],
            ondelete="CASCADE",
            name="fk_fg_commits_feature_group_id_feature_groups",
        ),
        sa.UniqueConstraint("feature_group_id", "delta_version", name="uq_fg_commits_version"),
    )


def downgrade() -> None:
    op.drop_table("fg_commits")
    op.drop_table("feature_groups")
    op.drop_table("projects")
