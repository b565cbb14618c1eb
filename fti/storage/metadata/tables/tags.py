"""Tags: free labels on catalog objects (feature groups, feature views, model versions, runs).

One row per (project, object kind, object id, tag); ``object_id`` is the id of the object's row in
its own table (``feature_groups.id``, ``model_versions.id``...). Owned by ``fti.tags.records``.
"""

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from fti.storage.metadata.tables._base import UtcDateTime, metadata

tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),  # feature_group | feature_view | model_version | run
    Column("object_id", Integer, nullable=False),
    Column("tag", String(63), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("project_id", "kind", "object_id", "tag", name="uq_tags_identity"),
    Index("ix_tags_tag", "project_id", "tag"),
)
