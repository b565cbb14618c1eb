"""Data-source tables: the watermark cursors of incremental reads."""

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from fti.storage.metadata.tables._base import JsonType, UtcDateTime, metadata

source_cursors = Table(
    "source_cursors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("source", Text, nullable=False),  # what is read: kind, URL without password, query/paths
    Column("column_name", String(255), nullable=False),  # the watermark column
    Column("value", JsonType, nullable=False),  # the last committed watermark, typed (see watermark.py)
    Column("boundary", JsonType, nullable=True),  # digests of the rows read at exactly that value
    Column("rows_total", BigInteger, nullable=False),  # rows committed through this cursor so far
    Column("revision", Integer, nullable=False),  # bumped by every advance (compare-and-set)
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_source_cursors_identity"),
)
