"""Batch data of a feature view: the point-in-time join of the latest data, transformed.

What ``fv.get_batch_data`` and ``fv.iter_batch_data`` return for batch inference: the view's query
joined over the latest Delta snapshot of every group (:mod:`fti.features.pit`), then passed
through the fitted :class:`~fti.features.transformations.Transformer` that training and online
serving use too (ARCHITECTURE.md invariant 2, "no skew").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_view import FeatureView
    from fti.features.transformations import Transformer

BATCH_RETURN_TYPES = ("pandas", "arrow", "polars")
DEFAULT_BATCH_ROWS = 262_144


def get_batch_data(
    fv: FeatureView,
    start_time: datetime | None,
    end_time: datetime | None,
    *,
    with_keys: bool,
    return_type: str,
    training_dataset_version: int | None,
    order: bool,
    engine: str = "duckdb",
) -> Any:
    """:meth:`FeatureView.get_batch_data <fti.features.feature_view.FeatureView.get_batch_data>`."""
    from fti.features import pit, training_data

    if return_type not in BATCH_RETURN_TYPES:
        raise ValidationError(f"return_type must be one of {BATCH_RETURN_TYPES}, got {return_type!r}")
    if training_data.check_engine(engine) == "spark" and return_type != "pandas":
        raise ValidationError(
            f"engine='spark' returns a Spark DataFrame, not {return_type!r}; convert it with "
            ".toArrow() or .toPandas(), or use engine='duckdb'"
        )
    training_data.check_time_range(start_time, end_time, fv.query.spine)
    transformer = fv.transformer(training_dataset_version)  # fails before the join without statistics
    if engine == "spark":
        from fti.spark import training

        return training.get_batch_data(
            fv, start_time, end_time, with_keys=with_keys, transformer=transformer, order=order
        )
    sources, _ = training_data.snapshot(fv.query, fv.project.backends.offline)
    table = pit.run(fv.query, sources, start_time=start_time, end_time=end_time, order=order)
    result = transformer.apply_table(table, fv.query.key_columns() if with_keys else ())
    if return_type == "arrow":
        return result
    if return_type == "polars":
        import polars as pl

        return pl.from_arrow(result)
    return result.to_pandas()


def iter_batch_data(
    fv: FeatureView,
    start_time: datetime | None,
    end_time: datetime | None,
    *,
    batch_rows: int,
    with_keys: bool,
    training_dataset_version: int | None,
    threads: int | None,
    memory_limit: str | None,
) -> Iterator[pa.Table]:
    """:meth:`FeatureView.iter_batch_data <fti.features.feature_view.FeatureView.iter_batch_data>`:
    arguments are checked now, the join runs at the first ``next()``."""
    from fti.features import pit, training_data

    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValidationError(f"batch_rows must be a positive integer, got {batch_rows!r}")
    training_data.check_time_range(start_time, end_time, fv.query.spine)
    transformer = fv.transformer(training_dataset_version)  # fails now, not at the first next()
    sources, _ = training_data.snapshot(fv.query, fv.project.backends.offline)
    tables = pit.stream(
        fv.query,
        sources,
        batch_rows=batch_rows,
        start_time=start_time,
        end_time=end_time,
        threads=threads,
        memory_limit=memory_limit,
    )
    return _transform_stream(tables, transformer, fv.query.key_columns() if with_keys else ())


def _transform_stream(
    tables: Iterator[pa.Table], transformer: Transformer, keys: Sequence[str]
) -> Iterator[pa.Table]:
    try:
        for table in tables:
            yield transformer.apply_table(table, keys)
    finally:
        close = getattr(tables, "close", None)
        if close is not None:
            close()  # releases the query engine's connection when the reader stops early
