"""Data sources: where feature pipelines read raw data (``fti.sources``).

- :class:`SQL`: a database by SQLAlchemy URL (PostgreSQL through ADBC, others through SQLAlchemy).
- :class:`Files`: Parquet, CSV or JSON files on local disk or any fsspec filesystem (``s3://``).
- ``source.read_incremental(..., cursor="ts")``: the rows past a watermark stored in the catalog,
  advanced only when the rows were written (:mod:`fti.sources.incremental`).
- :func:`list_cursors`, :func:`get_cursor`, :func:`reset_cursor`: the stored cursors.
- :class:`RedisStream`: a Redis Stream read through a consumer group (stream pipelines).

Credentials come from a secret (``secret="name"``, see ``fti secrets``), never from the code.
Importing this package loads no data library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "SQL": "fti.sources.sql",
    "Files": "fti.sources.files",
    "IncrementalRead": "fti.sources.incremental",
    "Cursor": "fti.sources.cursors",
    "list_cursors": "fti.sources.cursors",
    "get_cursor": "fti.sources.cursors",
    "reset_cursor": "fti.sources.cursors",
    "Watermark": "fti.sources.watermark",
    "RedisStream": "fti.sources.streams",
}

if TYPE_CHECKING:
    from fti.sources.cursors import Cursor, get_cursor, list_cursors, reset_cursor
    from fti.sources.files import Files
    from fti.sources.incremental import IncrementalRead
    from fti.sources.sql import SQL
    from fti.sources.streams import RedisStream
    from fti.sources.watermark import Watermark


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fti.sources' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "SQL",
    "Cursor",
    "Files",
    "IncrementalRead",
    "RedisStream",
    "Watermark",
    "get_cursor",
    "list_cursors",
    "reset_cursor",
]
