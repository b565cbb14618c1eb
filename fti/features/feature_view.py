"""Feature views: a query over feature groups, label columns and model-dependent transformations.

A feature view is what a model is trained on and served from. Its training data comes from the
point-in-time join of its query (:mod:`fti.features.pit`), materialized as versioned training
datasets (:mod:`fti.features.training_data`); its batch data and online feature vectors
(:mod:`fti.features.vectors`) pass through the same fitted
:class:`~fti.features.transformations.Transformer`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.features.records import FeatureViewMeta

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from fti.features._project import FeatureProject
    from fti.features.query import Query
    from fti.features.training_data import TrainingDataset
    from fti.features.transformations import Spec, Transformer
    from fti.features.vectors import VectorServer
    from fti.registry.model_version import ModelVersion

__all__ = ["BATCH_RETURN_TYPES", "DEFAULT_BATCH_ROWS", "FeatureView", "FeatureViewMeta"]

BATCH_RETURN_TYPES = ("pandas", "arrow", "polars")
DEFAULT_BATCH_ROWS = 262_144


class FeatureView:
    """A feature view. Obtain one from ``project.feature_store.get_or_create_feature_view``."""

    def __init__(self, project: FeatureProject, meta: FeatureViewMeta, query: Query) -> None:
        from fti.features.transformations import parse

        self._project = project
        self._meta = meta
        self.query = query
        self._specs: dict[str, Spec] = {f: parse(s, f) for f, s in meta.transformations.items()}
        label_set = set(meta.labels)
        self._inputs = [(c.name, c.dtype) for c in query.columns() if c.name not in label_set]
        self._transformers: dict[int | None, Transformer] = {}
        self._serving_version: int | None = None
        self._serving_resolved = False
        self._serving_pinned = False
        self._server: VectorServer | None = None
        self.last_training_dataset_version: int | None = None
        """The training-dataset version this object created or read last."""

    # --- identity -------------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self._meta.id

    @property
    def name(self) -> str:
        return self._meta.name

    @property
    def version(self) -> int:
        return self._meta.version

    @property
    def description(self) -> str:
        return self._meta.description

    @property
    def labels(self) -> list[str]:
        return list(self._meta.labels)

    @property
    def transformations(self) -> dict[str, str]:
        return dict(self._meta.transformations)

    @property
    def primary_key(self) -> list[str]:
        """The entity key(s) a feature-vector request needs: the spine group's primary key."""
        return self.query.spine.primary_key

    @property
    def event_time(self) -> str | None:
        """The spine group's event-time column (the time of each training row)."""
        return self.query.spine.event_time

    @property
    def transformation_specs(self) -> dict[str, Spec]:
        """The parsed transformation of each transformed feature (what training data fits)."""
        return dict(self._specs)

    @property
    def project(self) -> FeatureProject:
        return self._project

    def __repr__(self) -> str:
        return f"FeatureView(name={self.name!r}, version={self.version})"

    def models(self) -> list[ModelVersion]:
        """Model versions trained from this feature view (lineage, the other direction)."""
        return self._project.model_registry.list_models(feature_view=self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for the CLI and the UI)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "query": self._meta.query,
            "labels": self.labels,
            "transformations": self.transformations,
            "primary_key": self.primary_key,
            "created_at": self._meta.created_at.isoformat(),
            "training_dataset_versions": self.training_dataset_versions(),
        }

    # --- schema ---------------------------------------------------------------------------
    def feature_names(
        self, transformed: bool = True, training_dataset_version: int | None = None
    ) -> list[str]:
        """The model-input column names in order (labels excluded).

        With ``transformed``, one-hot encoded features expand to one column per category, which
        needs fitted statistics: those of ``training_dataset_version`` (default: the serving one).
        """
        if not transformed:
            return [name for name, _ in self._inputs]
        return list(self._transformer(self._resolve_version(training_dataset_version)).output_names)

    def feature_dtypes(
        self, transformed: bool = True, training_dataset_version: int | None = None
    ) -> dict[str, str]:
        """fti dtypes of the model-input columns (see :meth:`feature_names`)."""
        if not transformed:
            return dict(self._inputs)
        return dict(self._transformer(self._resolve_version(training_dataset_version)).output_dtypes)

    # --- training data --------------------------------------------------------------------
    def training_dataset_versions(self) -> list[int]:
        """The versions of this view's training datasets, oldest first."""
        from fti.features import training_data

        return [td.version for td in training_data.find(self)]

    def has_training_dataset(self, version: int) -> bool:
        from fti.features import training_data

        return isinstance(version, int) and bool(training_data.find(self, version))

    def training_dataset(self, version: int) -> TrainingDataset:
        """The catalog record of a training-dataset version (splits, input versions, statistics)."""
        from fti.features import training_data

        return training_data.get(self, version)

    def create_training_data(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        description: str = "",
    ) -> tuple[int, pd.DataFrame]:
        """Materialize a new training-dataset version without splits.

        Args:
            start_time: Spine rows with event time >= this (tz-aware) are included.
            end_time: Spine rows with event time < this are included.
            description: Free text stored with the version.

        Returns:
            The new version and its rows: transformed features, then the label columns.
        """
        version, parts = self._create(start_time, end_time, description, {"kind": "none"})
        return version, _with_labels(*parts)

    def train_test_split(
        self,
        test_size: float = 0.2,
        split: str = "random",
        seed: int = 42,
        test_start: datetime | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        description: str = "",
    ) -> tuple[Any, ...]:
        """Create a training-dataset version split into train and test sets.

        Args:
            test_size: Fraction of rows in the test set, in (0, 1) (``split="random"``).
            split: ``"random"`` (reproducible with ``seed``) or ``"time"`` (rows at or after
                ``test_start`` are the test set).
            seed: Random seed of the random split.
            test_start: Start of the test period (``split="time"``).
            start_time: Optional inclusive start of the spine event times.
            end_time: Optional exclusive end of the spine event times.
            description: Free text stored with the version.

        Returns:
            ``X_train, X_test, y_train, y_test`` (y is a Series for one label, a DataFrame for
            several, None without labels). Transformations are fitted on the train set only.
        """
        spec = self._split_spec(split, seed, test_size=test_size, test_start=test_start)
        version, _ = self._create(start_time, end_time, description, spec)
        return self.get_training_data(version)

    def train_validation_test_split(
        self,
        validation_size: float = 0.2,
        test_size: float = 0.1,
        split: str = "random",
        seed: int = 42,
        validation_start: datetime | None = None,
        test_start: datetime | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        description: str = "",
    ) -> tuple[Any, ...]:
        """Like :meth:`train_test_split` with a validation set (before ``test_start`` in time).

        Returns:
            ``X_train, X_val, X_test, y_train, y_val, y_test``.
        """
        spec = self._split_spec(
            split,
            seed,
            test_size=test_size,
            test_start=test_start,
            validation_size=validation_size,
            validation_start=validation_start,
        )
        version, _ = self._create(start_time, end_time, description, spec)
        return self.get_training_data(version)

    def get_training_data(
        self, training_dataset_version: int, split: str | None = None, transformed: bool = True
    ) -> tuple[Any, ...]:
        """Re-read a saved training-dataset version (identical data, whatever was inserted since).

        Returns:
            ``X, y`` for a version without splits or when ``split`` names one
            (``"train"``, ``"validation"``, ``"test"``); otherwise the tuple the split method
            returned (``X_train, X_test, y_train, y_test`` or the six-tuple with validation).
            With ``transformed=False`` the features are returned as stored, before transformation.
        """
        import pyarrow.compute as pc

        from fti.features import training_data

        record = training_data.get(self, training_dataset_version)
        if record.version not in self._transformers:
            self._transformers[record.version] = self._build_transformer(record.transformation_stats)
        table = training_data.read(self, record)
        self.last_training_dataset_version = record.version
        if split is not None and split not in record.splits:
            raise ValidationError(
                f"training dataset version {record.version} has no split {split!r}; it has {record.splits}"
            )
        names = [split] if split else (record.splits if record.split["kind"] != "none" else [None])
        xs: list[Any] = []
        ys: list[Any] = []
        for name in names:
            part = (
                table
                if name is None
                else table.filter(pc.equal(table.column(training_data.SPLIT_COLUMN), name))
            )
            x, y = self._features_and_labels(part, record.version if transformed else None, transformed)
            xs.append(x)
            ys.append(y)
        return (*xs, *ys)

    def _create(
        self,
        start_time: datetime | None,
        end_time: datetime | None,
        description: str,
        split: dict[str, Any],
    ) -> tuple[int, tuple[pd.DataFrame, Any]]:
        from fti.features import training_data

        self._check_range(start_time, end_time)
        if not isinstance(description, str):
            raise ValidationError(f"description must be a string, got {description!r}")
        record, table = training_data.create(
            self, start_time=start_time, end_time=end_time, description=description, split=split
        )
        self.last_training_dataset_version = record.version
        self._transformers[record.version] = self._build_transformer(record.transformation_stats)
        if not self._serving_pinned:  # "the latest version" just changed
            self._serving_resolved = False
            self._server = None
        return record.version, self._features_and_labels(table, record.version, True)

    def _split_spec(self, split: str, seed: int, **options: Any) -> dict[str, Any]:
        from fti.features import training_data

        return training_data.split_spec(split, seed, self.query.spine, **options)

    def _check_range(self, start_time: datetime | None, end_time: datetime | None) -> None:
        for label, value in (("start_time", start_time), ("end_time", end_time)):
            if value is None:
                continue
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValidationError(f"{label} must be a tz-aware datetime, got {value!r}")
            if self.event_time is None:
                raise ValidationError(
                    f"{label} filters on event time, but the spine {self.query.spine.name!r} has none"
                )
        if start_time is not None and end_time is not None and not start_time < end_time:
            raise ValidationError(f"start_time {start_time} must be before end_time {end_time}")

    # --- transformations ------------------------------------------------------------------
    def _build_transformer(self, stats: Mapping[str, Any]) -> Transformer:
        from fti.features.transformations import Transformer

        return Transformer(self._inputs, self._specs, stats)

    def _transformer(self, version: int | None) -> Transformer:
        transformer = self._transformers.get(version)
        if transformer is None:
            stats = {} if version is None else self.training_dataset(version).transformation_stats
            transformer = self._transformers[version] = self._build_transformer(stats)
        return transformer

    def _resolve_version(self, version: int | None) -> int | None:
        if version is not None:
            return version
        if not self._serving_resolved:
            versions = self.training_dataset_versions()
            self._serving_version = versions[-1] if versions else None
            self._serving_resolved = True
        return self._serving_version

    def _features_and_labels(
        self, table: pa.Table, version: int | None, transformed: bool, with_keys: bool = False
    ) -> tuple[pd.DataFrame, Any]:
        x = self._transform_table(table, version, transformed, with_keys).to_pandas()
        labels = self.labels
        if not labels:
            return x, None
        y = table.select(labels).to_pandas()
        return x, y[labels[0]] if len(labels) == 1 else y

    def _transform_table(
        self, table: pa.Table, version: int | None, transformed: bool, with_keys: bool
    ) -> pa.Table:
        import pyarrow as pa

        inputs = [table.column(name) for name, _ in self._inputs]
        if transformed:
            transformer = self._transformer(version)
            names, columns = transformer.output_names, transformer.apply(inputs)
        else:
            names, columns = [name for name, _ in self._inputs], inputs
        if with_keys:
            keys = [k for k in self.query.key_columns() if k not in names]
            names, columns = [*keys, *names], [*(table.column(k) for k in keys), *columns]
        return pa.table(columns, names=names)

    # --- batch and online -----------------------------------------------------------------
    def get_batch_data(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        *,
        with_keys: bool = False,
        return_type: str = "pandas",
        training_dataset_version: int | None = None,
        order: bool = True,
    ) -> Any:
        """Transformed features of the spine rows in ``[start_time, end_time)``, for batch inference.

        Uses the latest data of every group, joined point-in-time correctly, and the fitted
        statistics of ``training_dataset_version`` (default: the serving version, see
        :meth:`init_serving`). Labels are not included.

        Args:
            with_keys: Also return the spine's primary key and event-time columns (first).
            return_type: ``"pandas"``, ``"arrow"`` or ``"polars"``.
            order: Sort rows by spine event time, then key. ``False`` returns them in the query
                engine's order, which saves the sort (about 30% of the join time at 1M rows).
        """
        from fti.features import pit, training_data

        if return_type not in BATCH_RETURN_TYPES:
            raise ValidationError(f"return_type must be one of {BATCH_RETURN_TYPES}, got {return_type!r}")
        self._check_range(start_time, end_time)
        version = self._resolve_version(training_dataset_version)
        self._transformer(version)  # fails early, before the join, when statistics are missing
        sources, _ = training_data.snapshot(self.query, self._project.backends.offline)
        table = pit.run(self.query, sources, start_time=start_time, end_time=end_time, order=order)
        result = self._transform_table(table, version, True, with_keys)
        if return_type == "arrow":
            return result
        if return_type == "polars":
            import polars as pl

            return pl.from_arrow(result)
        return result.to_pandas()

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

        The point-in-time join runs once over the whole range and its result is read
        incrementally, so memory holds about one batch rather than the whole range; each batch
        passes through the same fitted transformer as :meth:`get_batch_data`. Inputs are
        validated when this is called; the join starts at the first ``next()``.

        Args:
            batch_rows: Rows per yielded table (every table but the last has exactly this many).
            with_keys: Also return the spine's primary key and event-time columns (first).
            training_dataset_version: Whose fitted statistics to use (default: serving version).
            threads: DuckDB worker threads (default: one per core).
            memory_limit: DuckDB memory limit such as ``"512MB"`` (default: DuckDB's).

        Raises:
            ValidationError: bad ``batch_rows`` or time range.
            NotFoundError: unknown training dataset version.
        """
        from fti.features import pit, training_data

        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValidationError(f"batch_rows must be a positive integer, got {batch_rows!r}")
        self._check_range(start_time, end_time)
        version = self._resolve_version(training_dataset_version)
        self._transformer(version)  # fails now, not at the first next(), when statistics are missing
        sources, _ = training_data.snapshot(self.query, self._project.backends.offline)
        tables = pit.stream(
            self.query,
            sources,
            batch_rows=batch_rows,
            start_time=start_time,
            end_time=end_time,
            threads=threads,
            memory_limit=memory_limit,
        )
        return self._transform_stream(tables, version, with_keys)

    def _transform_stream(
        self, tables: Iterator[pa.Table], version: int | None, with_keys: bool
    ) -> Iterator[pa.Table]:
        try:
            for table in tables:
                yield self._transform_table(table, version, True, with_keys)
        finally:
            close = getattr(tables, "close", None)
            if close is not None:
                close()  # releases the query engine's connection when the reader stops early

    def init_serving(self, training_dataset_version: int | None = None) -> None:
        """Prepare online serving with the fitted statistics of ``training_dataset_version``
        (default: the latest version). Later calls compile nothing and query no catalog."""
        from fti.features.vectors import VectorServer

        if training_dataset_version is not None:
            self.training_dataset(training_dataset_version)  # NotFoundError when unknown
            self._serving_version = training_dataset_version
            self._serving_resolved = True
            self._serving_pinned = True
        transformer = self._transformer(self._resolve_version(None))
        self._server = VectorServer(
            self.query, [name for name, _ in self._inputs], transformer, self._project.backends.online
        )

    def _vector_server(self) -> VectorServer:
        if self._server is None:
            self.init_serving()
        assert self._server is not None
        return self._server

    def get_feature_vector(
        self,
        entry: Mapping[str, Any],
        passed_features: Mapping[str, Any] | None = None,
        allow_missing: bool = False,
    ) -> list[Any]:
        """The transformed model-input vector of one entity, from the online store.

        Args:
            entry: The primary-key value(s) of the spine group, e.g. ``{"cc_num": 42}``.
            passed_features: Request-time values that override or supply features by name.
            allow_missing: Return nulls instead of raising when a group has no row for the key.

        Raises:
            ValidationError: the entry lacks a key column, or ``passed_features`` names an unknown feature.
            NotFoundError: a group has no online row for the key (and ``allow_missing`` is False).
        """
        from fti.features.vectors import check_entries, check_passed, to_rows

        server = self._vector_server()
        if not isinstance(entry, Mapping):
            raise ValidationError(f"entry must be a mapping such as {{'id': 1}}, got {entry!r}")
        check_entries((entry,), server.view_primary_key)
        passed = check_passed(passed_features, 1, server.positions, many=False)
        return to_rows(server.vectors((entry,), passed, allow_missing), 1)[0]

    def get_feature_vectors(
        self,
        entries: Sequence[Mapping[str, Any]],
        passed_features: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        return_type: str = "list",
        allow_missing: bool = False,
    ) -> Any:
        """Transformed vectors of many entities: one online read per feature group for all of them.

        Args:
            entries: One key mapping per entity.
            passed_features: One mapping for all entities, or a list with one per entity.
            return_type: ``"list"`` (list of lists), ``"numpy"`` (2-D array), ``"pandas"`` or ``"polars"``.
            allow_missing: As in :meth:`get_feature_vector`.
        """
        from fti.features.vectors import RETURN_TYPES, check_entries, check_passed, to_rows

        if return_type not in RETURN_TYPES:
            raise ValidationError(f"return_type must be one of {RETURN_TYPES}, got {return_type!r}")
        if isinstance(entries, Mapping) or not isinstance(entries, Sequence) or isinstance(entries, str):
            raise ValidationError("entries must be a list of mappings, e.g. [{'cc_num': 1}]")
        server = self._vector_server()
        check_entries(entries, server.view_primary_key)
        passed = check_passed(passed_features, len(entries), server.positions, many=True)
        n = len(entries)
        columns = server.vectors(entries, passed, allow_missing) if n else [[] for _ in server.names]
        if return_type == "list":
            return to_rows(columns, n) if n else []
        names = server.names
        if return_type == "numpy":
            import numpy as np

            numeric = all(t.startswith(("int", "float")) for t in server.transformer.output_dtypes.values())
            return np.array(to_rows(columns, n), dtype=np.float64 if numeric else object).reshape(
                n, len(names)
            )
        if return_type == "pandas":
            import pandas as pd

            return pd.DataFrame(to_rows(columns, n), columns=names)
        import polars as pl

        return pl.DataFrame(to_rows(columns, n), schema=names, orient="row")


def _with_labels(x: pd.DataFrame, y: Any) -> pd.DataFrame:
    if y is None:
        return x
    import pandas as pd

    frame: pd.DataFrame = pd.concat([x, y.to_frame() if isinstance(y, pd.Series) else y], axis=1)
    return frame
