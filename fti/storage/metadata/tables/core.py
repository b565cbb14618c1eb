"""Foundation tables: projects."""

from sqlalchemy import Column, Integer, String, Table

from fti.storage.metadata.tables._base import UtcDateTime, metadata

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
)
