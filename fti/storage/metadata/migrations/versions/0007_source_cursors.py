"""Watermark cursors of incremental source reads (issue 17).

Revision ID: 0007_source_cursors
Revises: 0006_secrets
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType, UtcDateTime

revision = "0007_source_cursors"
down_revision = "0006_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_cursors",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("column_name", sa.String(255), nullable=False),
        sa.Column("value", JsonType, nullable=False),
        sa.Column("boundary", JsonType, nullable=True),
        sa.Column("rows_total", sa.BigInteger, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_source_cursors"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_source_cursors_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_source_cursors_identity"),
    )


def downgrade() -> None:
    op.drop_table("source_cursors")
