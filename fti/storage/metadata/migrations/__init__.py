"""Alembic migrations of the catalog, applied automatically on connect."""
