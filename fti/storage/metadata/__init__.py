"""The metadata catalog: definitions, versions, runs and keys, in SQLite or PostgreSQL."""
