"""Feature-store tables: feature groups, their commits, their statistics state and the writes
under way."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from fti.storage.metadata.tables._base import JsonType, UtcDateTime, metadata

feature_groups = Table(
    "feature_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("version", Integer, nullable=False),
    Column("primary_key", JsonType, nullable=False),
    Column("event_time", String(255), nullable=True),
    Column("event_time_unit", String(2), nullable=True),  # s | ms | us | ns: integer event times
    Column("online_enabled", Boolean, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("features", JsonType, nullable=True),  # [{"name":..., "dtype":...}] once the schema is fixed
    Column("expectation_suite", JsonType, nullable=True),
    Column("embedding_index", JsonType, nullable=True),  # {"column", "metric"} or None
    Column("table_name", String(255), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    # external groups: {"source": {...}, "query": ..., "params": {...}} (read at query time)
    Column("external", JsonType, nullable=True),
    UniqueConstraint("project_id", "name", "version", name="uq_feature_groups_identity"),
)

fg_commits = Table(
    "fg_commits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_group_id", Integer, ForeignKey("feature_groups.id", ondelete="CASCADE"), nullable=False),
    Column("delta_version", BigInteger, nullable=False),
    Column("committed_at", UtcDateTime, nullable=False),
    Column("operation", String(32), nullable=False),  # insert | append_features
    Column("rows_inserted", BigInteger, nullable=False),
    Column("validation_status", String(16), nullable=False),  # none | passed | warned
    Column("validation_report", JsonType, nullable=True),
    Column("statistics", JsonType, nullable=True),
    UniqueConstraint("feature_group_id", "delta_version", name="uq_fg_commits_version"),
)

# The mergeable statistics of each group's latest stored version (fti.features.statistics_state):
# one row per group, replaced as commits add rows, so the catalog does not grow with each commit.
fg_statistics_state = Table(
    "fg_statistics_state",
    metadata,
    Column(
        "feature_group_id", Integer, ForeignKey("feature_groups.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("delta_version", BigInteger, nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# One row per write of a group between its start and the catalog record of its offline commit
# (fti.features.commit.writing): a row left behind by a writer that died tells fti.connect which
# groups to catch up without opening every group's offline table.
fg_writes = Table(
    "fg_writes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feature_group_id", Integer, ForeignKey("feature_groups.id", ondelete="CASCADE"), nullable=False),
    Column("writer", String(255), nullable=False),  # host:pid namespace:pid:start (fti._process)
    Column("started_at", UtcDateTime, nullable=False),
    Index("ix_fg_writes_feature_group_id", "feature_group_id"),
)
