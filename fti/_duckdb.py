"""DuckDB helpers shared by the feature store (in-process query engine)."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection (cheap; one per query keeps them thread-safe).

    Args:
        threads: Worker threads (default: DuckDB's, one per core).
        memory_limit: DuckDB's memory limit, e.g. ``"512MB"`` (default: DuckDB's, 80% of RAM);
            operators that can spill go to disk beyond it.
    """
    config: dict[str, Any] = {}
    if threads is not None:
        config["threads"] = threads
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    return duckdb.connect(config=config)


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pa.Table:
    """Run ``sql`` and return the result as one Arrow table (DuckDB 1.x and 2.x spell this differently)."""
    relation = con.sql(sql, params=params or None)
    to_table = getattr(relation, "to_arrow_table", None) or relation.arrow
    return to_table()  # type: ignore[no-any-return]


def quote(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'
