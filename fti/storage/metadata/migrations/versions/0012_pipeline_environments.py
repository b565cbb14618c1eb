"""An isolated environment per pipeline (issue 18).

``pipelines.environment``: the requirements and Python version a pipeline's runs need (None: the
scheduler's own interpreter). ``pipeline_runs.environment``: the environment a run ran in, with
its resolved package list (lineage).

Revision ID: 0012_pipeline_environments
Revises: 0011_on_demand
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType

revision = "0012_pipeline_environments"
down_revision = "0011_on_demand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipelines") as batch:
        batch.add_column(sa.Column("environment", JsonType, nullable=True))
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.add_column(sa.Column("environment", JsonType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("environment")
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_column("environment")
