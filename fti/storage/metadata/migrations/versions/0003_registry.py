"""Model registry and training runs (issue: model registry).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from fti.storage.metadata.tables._base import JsonType, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", UtcDateTime, nullable=False),
        sa.Column("end_time", UtcDateTime, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("git_dirty", sa.Boolean, nullable=True),
        sa.Column("python_version", sa.String(64), nullable=False),
        sa.Column("packages", JsonType, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_runs_project_id_projects"
        ),
    )
    op.create_index("ix_runs_project_id", "runs", ["project_id"])
    op.create_table(
        "run_params",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_params"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], ondelete="CASCADE", name="fk_run_params_run_id_runs"
        ),
        sa.UniqueConstraint("run_id", "key", name="uq_run_params_key"),
    )
    op.create_table(
        "run_metrics",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("logged_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_metrics"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], ondelete="CASCADE", name="fk_run_metrics_run_id_runs"
        ),
        sa.UniqueConstraint("run_id", "key", "step", name="uq_run_metrics_step"),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], ondelete="CASCADE", name="fk_models_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_models_identity"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("flavor", sa.String(32), nullable=False),
        sa.Column("flavor_options", JsonType, nullable=False),
        sa.Column("artifacts", JsonType, nullable=False),
        sa.Column("artifact_prefix", sa.String(1024), nullable=False),
        sa.Column("signature", JsonType, nullable=False),
        sa.Column("metrics", JsonType, nullable=False),
        sa.Column("input_example", JsonType, nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("feature_view_id", sa.Integer, nullable=True),
        sa.Column("feature_view_name", sa.String(63), nullable=True),
        sa.Column("feature_view_version", sa.Integer, nullable=True),
        sa.Column("training_dataset_version", sa.Integer, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], ondelete="CASCADE", name="fk_model_versions_model_id_models"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], ondelete="SET NULL", name="fk_model_versions_run_id_runs"
        ),
        sa.ForeignKeyConstraint(
            ["feature_view_id"],
            ["feature_views.id"],
            ondelete="SET NULL",
            name="fk_model_versions_feature_view_id_feature_views",
        ),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_identity"),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_index("ix_model_versions_feature_view_id", "model_versions", ["feature_view_id"])
    op.create_table(
        "model_aliases",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(63), nullable=False),
        sa.Column("model_version_id", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_aliases"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], ondelete="CASCADE", name="fk_model_aliases_model_id_models"
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            ondelete="RESTRICT",
            name="fk_model_aliases_model_version_id_model_versions",
        ),
        sa.UniqueConstraint("model_id", "alias", name="uq_model_aliases_alias"),
    )
    op.create_table(
        "alias_history",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(63), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("changed_at", UtcDateTime, nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alias_history"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], ondelete="CASCADE", name="fk_alias_history_model_id_models"
        ),
    )
    op.create_index("ix_alias_history_model_id", "alias_history", ["model_id"])


def downgrade() -> None:
    op.drop_table("alias_history")
    op.drop_table("model_aliases")
    op.drop_index("ix_model_versions_feature_view_id", "model_versions")
    op.drop_index("ix_model_versions_run_id", "model_versions")
    op.drop_table("model_versions")
    op.drop_table("models")
    op.drop_table("run_metrics")
    op.drop_table("run_params")
    op.drop_index("ix_runs_project_id", "runs")
    op.drop_table("runs")
