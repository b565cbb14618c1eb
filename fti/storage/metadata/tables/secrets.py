"""The secrets table: named values encrypted with the catalog's secret key (never stored in clear)."""

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from fti.storage.metadata.tables._base import UtcDateTime, metadata

secrets = Table(
    "secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("token", Text, nullable=False),  # Fernet token (AES-128-CBC + HMAC-SHA256) of the value
    Column("key_id", String(16), nullable=False),  # which key encrypted it (a hash, not the key)
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(255), nullable=False),
    UniqueConstraint("project_id", "name", name="uq_secrets_identity"),
)
