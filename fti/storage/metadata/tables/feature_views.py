"""Feature-view tables: feature views and their versioned training datasets."""

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from fti.storage.metadata.tables._base import JsonType, UtcDateTime, metadata

feature_views = Table(
    "feature_views",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("query", JsonType, nullable=False),  # fti.features.query.Query.to_dict()
    Column("labels", JsonType, nullable=False),  # [column, ...]
    Column("transformations", JsonType, nullable=False),  # {column: spec}
    Column("on_demand", JsonType, nullable=True),  # [fti.features.on_demand record, ...]
    Column("request_fields", JsonType, nullable=True),  # [column, ...]
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("project_id", "name", "version", name="uq_feature_views_identity"),
)

training_datasets = Table(
    "training_datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_view_id", Integer, ForeignKey("feature_views.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("start_time", UtcDateTime, nullable=True),
    Column("end_time", UtcDateTime, nullable=True),
    Column("split", JsonType, nullable=False),  # {"kind": "none"|"random"|"time", sizes, seed, starts}
    Column("input_versions", JsonType, nullable=False),  # {offline table name: Delta version}
    Column("transformation_stats", JsonType, nullable=False),  # {column: fitted statistics}
    Column("row_counts", JsonType, nullable=False),  # {"total": n, "train": n, ...}
    Column("table_name", String(255), nullable=False),
    Column("table_version", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("feature_view_id", "version", name="uq_training_datasets_version"),
)
