"""API-key roles and tags (issue 15: web UI, roles, tags).

``api_keys.role`` (reader | writer | admin): keys that existed before roles keep working as admin.
``tags``: free labels on feature groups, feature views, model versions and runs.

Revision ID: 0008_roles_tags
Revises: 0007_source_cursors
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import UtcDateTime

revision = "0008_roles_tags"
down_revision = "0007_source_cursors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="admin"))
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("object_id", sa.Integer, nullable=False),
        sa.Column("tag", sa.String(63), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_tags_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "kind", "object_id", "tag", name="uq_tags_identity"),
    )
    op.create_index("ix_tags_tag", "tags", ["project_id", "tag"])


def downgrade() -> None:
    op.drop_index("ix_tags_tag", table_name="tags")
    op.drop_table("tags")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("role")
