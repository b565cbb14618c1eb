"""Registry habits (issue 20): metrics logged on model versions with their time, files logged by runs.

``model_version_metrics``: every metric value of a version, at registration and after (the
version's ``metrics`` column keeps the latest of each). ``run_artifacts``: files a run logged
(``run.log_artifact``, ``run.log_figure``) with their SHA-256. Existing versions' metrics are
copied into the history with their registration time.

Revision ID: 0017_registry_habits
Revises: 0016_stream_status
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import UtcDateTime

revision = "0017_registry_habits"
down_revision = "0016_stream_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_version_metrics",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("model_version_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("logged_at", UtcDateTime, nullable=False),
        sa.Column("logged_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_version_metrics"),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            ondelete="CASCADE",
            name="fk_model_version_metrics_model_version_id_model_versions",
        ),
    )
    op.create_index(
        "ix_model_version_metrics_model_version_id", "model_version_metrics", ["model_version_id"]
    )
    op.create_table(
        "run_artifacts",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("logged_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_artifacts"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], ondelete="CASCADE", name="fk_run_artifacts_run_id_runs"
        ),
        sa.UniqueConstraint("run_id", "name", name="uq_run_artifacts_name"),
    )
    # the metrics registered so far become the first entries of each version's history
    versions = sa.table(
        "model_versions",
        sa.column("id", sa.Integer),
        sa.column("metrics", sa.JSON),
        sa.column("created_at", UtcDateTime),
        sa.column("created_by", sa.String),
    )
    history = sa.table(
        "model_version_metrics",
        sa.column("model_version_id", sa.Integer),
        sa.column("key", sa.String),
        sa.column("value", sa.Float),
        sa.column("logged_at", UtcDateTime),
        sa.column("logged_by", sa.String),
    )
    conn = op.get_bind()
    rows = [
        {
            "model_version_id": r.id,
            "key": k,
            "value": float(v),
            "logged_at": r.created_at,
            "logged_by": r.created_by,
        }
        for r in conn.execute(sa.select(versions))
        for k, v in (r.metrics or {}).items()
    ]
    if rows:
        conn.execute(sa.insert(history), rows)


def downgrade() -> None:
    op.drop_table("run_artifacts")
    op.drop_index("ix_model_version_metrics_model_version_id", table_name="model_version_metrics")
    op.drop_table("model_version_metrics")
