"""Materializing a Spark insert online: the latest row per key, from the executors or the driver.

For a Redis online store every executor writes the latest rows of its partitions straight to
Redis (the rows only, ``version=None``), in parallel; when all have succeeded, the driver records
the offline version with an empty write, so ``applied_version`` never claims rows that are not
there and a failure midway is caught up by the next ``fg.materialize()``. An embedded SQLite
store is a file on the driver's machine: the latest rows are collected there and written in one
transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from fti.features.feature_group import FeatureGroup

PARALLEL_SCHEMES = ("redis", "rediss")
"""Online stores every executor can reach and write to at once."""


def latest_per_key(df: DataFrame, primary_key: list[str], event_time: str | None) -> DataFrame:
    """One row per primary key: the one with the greatest event time (as
    :func:`fti.features.ingestion.latest_per_key`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = [F.col(f"`{k}`") for k in primary_key]
    window = Window.partitionBy(*keys)
    ordered = window.orderBy(F.col(f"`{event_time}`").desc()) if event_time else window.orderBy(*keys)
    return df.withColumn("__fti_n", F.row_number().over(ordered)).where(F.col("__fti_n") == 1).drop("__fti_n")


def write(fg: FeatureGroup, rows: DataFrame, schema: pa.Schema, version: int) -> int:
    """Write ``rows`` (at most one per key, ``schema``'s columns) to the group's online table and
    record offline ``version`` as applied; returns the rows written."""
    from fti.plugins import scheme_of

    project = fg.project
    online = project.backends.online
    url = project.settings.resolved_online_url
    table, keys, event_time = fg.table_name, fg.primary_key, fg.event_time
    if scheme_of(url) not in PARALLEL_SCHEMES:
        collected = rows.toArrow()
        data = collected.cast(schema) if collected.num_rows else schema.empty_table()
        return online.write(table, data, key_columns=keys, event_time=event_time, version=version)

    def write_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from fti.plugins import online_store_from_url

        store = online_store_from_url(url)
        written = 0
        try:
            for batch in batches:
                data = pa.Table.from_batches([batch]).cast(schema)
                written += store.write(table, data, key_columns=keys, event_time=event_time, version=None)
        finally:
            store.close()
        yield pa.RecordBatch.from_arrays([pa.array([written], pa.int64())], names=["rows"])

    counts: list[Any] = rows.mapInArrow(write_partition, "rows long").collect()
    # every partition succeeded: now the version may be claimed
    online.write(table, schema.empty_table(), key_columns=keys, event_time=event_time, version=version)
    return sum(int(r["rows"]) for r in counts)
