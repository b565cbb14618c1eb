"""Model-registry tables: models, versions, aliases, the aliases' history and evaluations.

``model_versions.feature_view_id`` references ``feature_views.id`` (migration 0002) and
``model_versions.run_id`` references ``runs.id`` (``tables.training``); the feature view's name and
version are also copied onto the version row so lineage survives the view being deleted.
"""

from sqlalchemy import Column, Float, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from fti.storage.metadata.tables._base import JsonType, UtcDateTime, metadata

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_models_identity"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("flavor_options", JsonType, nullable=False),  # what the flavor needs to load (file, types...)
    Column("artifacts", JsonType, nullable=False),  # {"relative/path": "sha256"}
    Column("artifact_prefix", String(1024), nullable=False),
    Column("signature", JsonType, nullable=False),
    Column("metrics", JsonType, nullable=False),
    Column("input_example", JsonType, nullable=True),  # {"columns": [...], "data": [[...]]}
    Column("description", Text, nullable=False, default=""),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="SET NULL"), nullable=True, index=True),
    Column(
        "feature_view_id",
        Integer,
        ForeignKey("feature_views.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("feature_view_name", String(63), nullable=True),
    Column("feature_view_version", Integer, nullable=True),
    Column("training_dataset_version", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_identity"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("alias", String(63), nullable=False),
    # RESTRICT: a version an alias points to cannot disappear without the alias being moved first.
    Column("model_version_id", Integer, ForeignKey("model_versions.id", ondelete="RESTRICT"), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(255), nullable=False),
    UniqueConstraint("model_id", "alias", name="uq_model_aliases_alias"),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("alias", String(63), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("changed_by", String(255), nullable=False),
    Column("reason", Text, nullable=False, default=""),
)

# An evaluation of a model version on data (fti.registry.evaluation): numbered per version, never
# changed after it is written; deleting the version deletes its evaluations.
model_evaluations = Table(
    "model_evaluations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # the unique (model_version_id, number) key also indexes the reads by version
    Column("model_version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("task", String(16), nullable=False),  # binary | multiclass | regression
    Column("rows", Integer, nullable=False),
    Column("source", JsonType, nullable=False),  # the rows: training dataset split or time range
    Column("settings", JsonType, nullable=False),  # slices, sensitive features, min_rows, label
    Column("metrics", JsonType, nullable=False),  # {name: value} over every row
    Column("slices", JsonType, nullable=False),  # [{column, value, rows, metrics, baseline}]
    Column("fairness", JsonType, nullable=False),  # {feature: {metrics, groups, baseline}}
    Column("baseline", JsonType, nullable=True),  # {ref, model, metrics} scored on the same rows
    Column("scorer", String(32), nullable=False),
    Column("seconds", Float, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("model_version_id", "number", name="uq_model_evaluations_number"),
)

# Metrics logged on a version, at registration and later (an evaluation run after it): one row per
# value with its time; the version's ``metrics`` column holds the latest value of each (migration 0011).
model_version_metrics = Table(
    "model_version_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "model_version_id",
        Integer,
        ForeignKey("model_versions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("key", String(255), nullable=False),
    Column("value", Float, nullable=False),
    Column("logged_at", UtcDateTime, nullable=False),
    Column("logged_by", String(255), nullable=False),
)
