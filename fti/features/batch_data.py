"""Batch data of a feature view: the point-in-time join of the latest data, transformed.

What ``fv.get_batch_data`` and ``fv.iter_batch_data`` return for batch inference: the view's query
joined over the latest Delta snapshot of every group (:mod:`fti.features.pit`), with the view's
on-demand features computed (:mod:`fti.features.on_demand`), then passed through the fitted
:class:`~fti.features.transformations.Transformer` that training and online serving use too
(ARCHITECTURE.md invariant 2, "no skew"); :class:`BatchScoring` is that part of the feature view's
API. Also the untransformed rows of a query (``query.read()``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_view import FeatureView
    from fti.features.on_demand import OnDemandPlan
    from fti.features.query import Query
    from fti.features.transformations import Transformer

BATCH_RETURN_TYPES = ("pandas", "arrow", "polars")
DEFAULT_BATCH_ROWS = 262_144
DATAFRAME_TYPES = ("default", "pandas", "polars", "pyarrow", "arrow", "numpy", "python")
"""Hopsworks' ``dataframe_type`` names (``default`` is pandas; ``python`` a list of rows)."""


def get_batch_data(
    fv: FeatureView,
    start_time: datetime | None,
    end_time: datetime | None,
    *,
    keep_keys: Sequence[str],
    return_type: str,
    training_dataset_version: int | None,
    order: bool,
    transformed: bool = True,
    engine: str = "duckdb",
) -> Any:
    """:meth:`FeatureView.get_batch_data <fti.features.feature_view.FeatureView.get_batch_data>`:
    the spine's key columns named in ``keep_keys`` come first, then the model inputs, transformed
    (or as stored with ``transformed=False``)."""
    from fti.features import pit, training_data

    if return_type not in (*BATCH_RETURN_TYPES, *DATAFRAME_TYPES):
        raise ValidationError(f"return_type must be one of {BATCH_RETURN_TYPES}, got {return_type!r}")
    if not isinstance(transformed, bool):
        raise ValidationError(f"transformed must be True or False, got {transformed!r}")
    if training_data.check_engine(engine) == "spark" and return_type not in ("pandas", "default"):
        raise ValidationError(
            f"engine='spark' returns a Spark DataFrame, not {return_type!r}; convert it with "
            ".toArrow() or .toPandas(), or use engine='duckdb'"
        )
    training_data.check_time_range(start_time, end_time, fv.query.spine)
    transformer = fv.transformer(training_dataset_version) if transformed else None
    if engine == "spark":
        from fti.spark import training

        if transformer is None:
            raise ValidationError(
                "engine='spark' returns transformed features; use engine='duckdb' for transformed=False"
            )
        return training.get_batch_data(
            fv, start_time, end_time, with_keys=bool(keep_keys), transformer=transformer, order=order
        )
    sources, _ = training_data.snapshot(fv.query, fv.project.backends.offline)
    table = pit.run(fv.query, sources, start_time=start_time, end_time=end_time, order=order)
    table = fv.on_demand_plan.apply_table(table)
    keys = [k for k in fv.query.key_columns() if k in keep_keys]
    if transformer is not None:
        result = transformer.apply_table(table, keys)
    else:  # the features as stored (on-demand ones computed), before transformation
        inputs = fv.feature_names(transformed=False)
        result = table.select([*(k for k in keys if k not in inputs), *inputs])
    return convert(result, return_type)


def convert(table: pa.Table, dataframe_type: str) -> Any:
    """``table`` as the ``return_type`` / ``dataframe_type`` asked for (see :data:`DATAFRAME_TYPES`)."""
    if dataframe_type in ("arrow", "pyarrow"):
        return table
    if dataframe_type == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if dataframe_type == "python":
        return [list(row.values()) for row in table.to_pylist()]
    frame = table.to_pandas()
    return frame.to_numpy() if dataframe_type == "numpy" else frame


def read_query(
    query: Query, start_time: datetime | None, end_time: datetime | None, *, dataframe_type: str
) -> Any:
    """:meth:`Query.read <fti.features.query.Query.read>`: the selected columns of the joined rows
    over the latest snapshot of every group, in the order of :func:`get_batch_data`."""
    from fti.features import pit, training_data

    if dataframe_type not in DATAFRAME_TYPES:
        raise ValidationError(f"dataframe_type must be one of {DATAFRAME_TYPES}, got {dataframe_type!r}")
    training_data.check_time_range(start_time, end_time, query.spine)
    sources, _ = training_data.snapshot(query, query.spine.project.backends.offline)
    table = pit.run(query, sources, start_time=start_time, end_time=end_time)
    return convert(table.select([c.name for c in query.columns()]), dataframe_type)


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
    plan = fv.on_demand_plan
    plan.functions()  # imported and checked now too
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
    return _transform_stream(tables, plan, transformer, fv.query.key_columns() if with_keys else ())


def _transform_stream(
    tables: Iterator[pa.Table], plan: OnDemandPlan, transformer: Transformer, keys: Sequence[str]
) -> Iterator[pa.Table]:
    try:
        for table in tables:
            yield transformer.apply_table(plan.apply_table(table), keys)
    finally:
        close = getattr(tables, "close", None)
        if close is not None:
            close()  # releases the query engine's connection when the reader stops early


class BatchScoring:
    """The batch-inference API of :class:`~fti.features.feature_view.FeatureView`:
    ``get_batch_data``, ``iter_batch_data`` and Hopsworks' ``init_batch_scoring``."""

    _batch_version: int | None = None
    """The training-dataset version :meth:`init_batch_scoring` chose (None: the serving one)."""

    if TYPE_CHECKING:

        @property
        def query(self) -> Query: ...

        def training_dataset(self, version: int) -> Any: ...

    def init_batch_scoring(self, training_dataset_version: int | None = None) -> None:
        """Use the fitted statistics of ``training_dataset_version`` (default: the latest version)
        in :meth:`get_batch_data` and :meth:`iter_batch_data` when they are not given one
        (Hopsworks' ``fv.init_batch_scoring(1)``).

        Raises:
            NotFoundError: no such training-dataset version.
        """
        if training_dataset_version is not None:
            self.training_dataset(training_dataset_version)  # NotFoundError when unknown
        self._batch_version = training_dataset_version

    def get_batch_data(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        read_options: dict[str, Any] | None = None,
        *,
        with_keys: bool = False,
        primary_key: bool = False,
        event_time: bool = False,
        transformed: bool = True,
        return_type: str | None = None,
        dataframe_type: str = "default",
        training_dataset_version: int | None = None,
        order: bool = True,
        engine: str = "duckdb",
    ) -> Any:
        """The features of the spine rows in ``[start_time, end_time)``, for batch inference.

        Uses the latest data of every group, joined point-in-time correctly, transformed with the
        fitted statistics of ``training_dataset_version`` (default: the one
        :meth:`init_batch_scoring` chose, else the serving version, see ``init_serving``).
        Labels are not included.

        **Row order** (stable, documented, and the same as ``query.read()``): by spine event
        time, then primary key; for a spine without an event time, the order its rows were
        written, oldest first, so the newest row is the last (an upsert that rewrites a row
        moves it to the end). ``order=False`` returns them in the query engine's order instead,
        which saves the sort (about 30% of the join time at 1M rows).

        Args:
            read_options: Accepted for Hopsworks compatibility; fti has none.
            with_keys: Also return the spine's primary key and event-time columns (first).
            primary_key: Also return the spine's primary-key columns (Hopsworks' name).
            event_time: Also return the spine's event-time column (Hopsworks' name).
            transformed: False returns the features as stored, before transformation.
            return_type: ``"pandas"``, ``"arrow"`` or ``"polars"`` (fti's name; overrides
                ``dataframe_type``).
            dataframe_type: Hopsworks' ``"default"``/``"pandas"``, ``"polars"``, ``"pyarrow"``,
                ``"numpy"`` or ``"python"``.
            engine: ``"duckdb"``, or ``"spark"``: a lazy Spark DataFrame joined and transformed
                on ``project.spark()`` (see :mod:`fti.spark`).
        """
        if read_options is not None and not isinstance(read_options, dict):
            raise ValidationError(f"read_options must be a dict, got {read_options!r}")
        for label, flag in (
            ("with_keys", with_keys),
            ("primary_key", primary_key),
            ("event_time", event_time),
        ):
            if not isinstance(flag, bool):
                raise ValidationError(f"{label} must be True or False, got {flag!r}")
        if dataframe_type not in DATAFRAME_TYPES:
            raise ValidationError(f"dataframe_type must be one of {DATAFRAME_TYPES}, got {dataframe_type!r}")
        spine = self.query.spine
        keep = [
            *(spine.primary_key if with_keys or primary_key else []),
            *([spine.event_time] if spine.event_time and (with_keys or event_time) else []),
        ]
        return get_batch_data(
            self,  # type: ignore[arg-type]  # mixed into FeatureView
            start_time,
            end_time,
            keep_keys=keep,
            return_type=return_type if return_type is not None else dataframe_type,
            training_dataset_version=self._batch_training_version(training_dataset_version),
            order=order,
            transformed=transformed,
            engine=engine,
        )

    def iter_batch_data(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        with_keys: bool = False,
        training_dataset_version: int | None = None,
        threads: int | None = None,
        memory_limit: str | None = None,
    ) -> Iterator[pa.Table]:
        """The rows of :meth:`get_batch_data` (``order=False``) as a stream of Arrow tables.

        The spine is read batch by batch and each batch looks its rows of the joined groups up
        (each group is read once and held in memory; see :mod:`fti.features.lookup_join`), so
        memory holds the joined groups and about one batch, whatever the range's row count;
        rows come in the order the spine stores them. Each batch passes through the same
        fitted transformer as :meth:`get_batch_data`. Inputs are validated when this is called;
        the groups are read at the first ``next()``.

        Args:
            batch_rows: Rows per yielded table (every table but the last has exactly this many).
            with_keys: Also return the spine's primary key and event-time columns (first).
            training_dataset_version: Whose fitted statistics to use (default: as for
                :meth:`get_batch_data`).
            threads: DuckDB worker threads for the view's filter, if it has one (default: one
                per core).
            memory_limit: DuckDB memory limit for the view's filter, such as ``"512MB"``
                (default: DuckDB's).

        Raises:
            ValidationError: bad ``batch_rows`` or time range.
            NotFoundError: unknown training dataset version.
        """
        return iter_batch_data(
            self,  # type: ignore[arg-type]  # mixed into FeatureView
            start_time,
            end_time,
            batch_rows=batch_rows,
            with_keys=with_keys,
            training_dataset_version=self._batch_training_version(training_dataset_version),
            threads=threads,
            memory_limit=memory_limit,
        )

    def _batch_training_version(self, version: int | None) -> int | None:
        return version if version is not None else self._batch_version
