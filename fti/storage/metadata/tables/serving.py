"""Model-serving tables: deployments and API keys."""

from sqlalchemy import Column, ForeignKey, Integer, String, Table, UniqueConstraint

from fti.storage.metadata.tables._base import JsonType, UtcDateTime, metadata

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("model", String(255), nullable=False),  # "name", "name@alias"
    Column("model_version", Integer, nullable=True),  # pinned version, else follow the alias
    Column("config", JsonType, nullable=False),  # batching, limits, enrichment, scorer
    Column("status", String(16), nullable=False),  # running | stopped
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_deployments_identity"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(63), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown in listings; the key itself is never stored
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    # reader | writer | admin (fti.serving.auth.ROLES); keys created before roles existed are admin
    Column("role", String(16), nullable=False, server_default="admin"),
    UniqueConstraint("project_id", "name", name="uq_api_keys_identity"),
)
