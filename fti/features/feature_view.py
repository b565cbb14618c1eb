"""Feature views: a query over feature groups, label columns and model-dependent transformations.

A feature view is what a model is trained on and served from. This module holds its definition
and training API: training data comes from the point-in-time join of its query
(:mod:`fti.features.pit`), materialized as versioned training datasets
(:mod:`fti.features.training_data`). Batch data (:mod:`fti.features.batch_data`) and online
feature vectors (:class:`~fti.features.vectors.FeatureViewServing`) pass through the same fitted
:class:`~fti.features.transformations.Transformer`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.features.batch_data import BATCH_RETURN_TYPES, DEFAULT_BATCH_ROWS
from fti.features.records import FeatureViewMeta

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features._project import FeatureProject
    from fti.features.query import Query
    from fti.features.training_data import TrainingDataset
    from fti.features.transformations import Spec, Transformer
    from fti.features.vectors import FeatureViewServing
    from fti.registry.model_version import ModelVersion

__all__ = ["BATCH_RETURN_TYPES", "DEFAULT_BATCH_ROWS", "FeatureView", "FeatureViewMeta"]


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
        """Fitted transformers by training-dataset version (None: nothing fitted), read once each."""
        self._serving: FeatureViewServing | None = None
        """What :meth:`get_feature_vector` uses: set by :meth:`init_serving` or at the first call."""
        self._serving_pinned = False
        """:meth:`init_serving` named a version, so a new training dataset does not replace it."""
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

    def add_tag(self, tag: str) -> None:
        """Tag this feature view version; see :mod:`fti.tags`."""
        from fti import tags

        tags.add(self._project, "feature_view", self.id, tag)

    def remove_tag(self, tag: str) -> None:
        """Remove a tag; NotFoundError when the view does not have it."""
        from fti import tags

        tags.remove(self._project, "feature_view", self.id, tag, what=f"feature view {self.name!r}")

    @property
    def tags(self) -> list[str]:
        """This version's tags, sorted."""
        from fti import tags

        return tags.tags_of(self._project, "feature_view", self.id)

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
        return list(self.transformer(training_dataset_version).output_names)

    def feature_dtypes(
        self, transformed: bool = True, training_dataset_version: int | None = None
    ) -> dict[str, str]:
        """fti dtypes of the model-input columns (see :meth:`feature_names`)."""
        if not transformed:
            return dict(self._inputs)
        return dict(self.transformer(training_dataset_version).output_dtypes)

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
        *,
        engine: str = "duckdb",
    ) -> tuple[int, Any]:
        """Materialize a new training-dataset version without splits.

        Args:
            start_time: Spine rows with event time >= this (tz-aware) are included.
            end_time: Spine rows with event time < this are included.
            description: Free text stored with the version.
            engine: ``"duckdb"`` (in this process) or ``"spark"`` (on ``project.spark()``, see
                :mod:`fti.spark`; a Spark DataFrame in row order). Both record the same version.

        Returns:
            The new version and its rows: transformed features, then the label columns.
        """
        from fti.features import training_data

        version, table = self._create(start_time, end_time, description, {"kind": "none"}, engine)
        return version, training_data.rows_with_labels(self, table, self._transformer(version), engine)

    def train_test_split(
        self,
        test_size: float = 0.2,
        split: str = "random",
        seed: int = 42,
        test_start: datetime | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        description: str = "",
        *,
        engine: str = "duckdb",
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
            engine: ``"duckdb"`` or ``"spark"`` (see :meth:`create_training_data`); both split
                the same rows the same way.

        Returns:
            ``X_train, X_test, y_train, y_test`` (y is a Series for one label, a DataFrame for
            several, None without labels). Transformations are fitted on the train set only.
        """
        spec = self._split_spec(split, seed, test_size=test_size, test_start=test_start)
        version, _ = self._create(start_time, end_time, description, spec, engine)
        return self.get_training_data(version, engine=engine)

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
        *,
        engine: str = "duckdb",
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
        version, _ = self._create(start_time, end_time, description, spec, engine)
        return self.get_training_data(version, engine=engine)

    def get_training_data(
        self,
        training_dataset_version: int,
        split: str | None = None,
        transformed: bool = True,
        *,
        engine: str = "duckdb",
    ) -> tuple[Any, ...]:
        """Re-read a saved training-dataset version (identical data, whatever was inserted since).

        Returns:
            ``X, y`` for a version without splits or when ``split`` names one
            (``"train"``, ``"validation"``, ``"test"``); otherwise the tuple the split method
            returned (``X_train, X_test, y_train, y_test`` or the six-tuple with validation).
            With ``transformed=False`` the features are returned as stored, before transformation.
            pandas objects, or with ``engine="spark"`` Spark DataFrames in row order (X and y
            line up row by row when collected).
        """
        from fti.features import training_data

        engine = training_data.check_engine(engine)
        record = training_data.get(self, training_dataset_version)
        if split is not None and split not in record.splits:
            raise ValidationError(
                f"training dataset version {record.version} has no split {split!r}; it has {record.splits}"
            )
        if record.version not in self._transformers:
            self._transformers[record.version] = self._build_transformer(record.transformation_stats)
        self.last_training_dataset_version = record.version
        names = [split] if split else (record.splits if record.split["kind"] != "none" else [None])
        transformer = self._transformer(record.version) if transformed else None
        return training_data.split_parts(self, record, names, transformer, engine)

    def _create(
        self,
        start_time: datetime | None,
        end_time: datetime | None,
        description: str,
        split: dict[str, Any],
        engine: str,
    ) -> tuple[int, Any]:
        from fti.features import training_data

        training_data.check_time_range(start_time, end_time, self.query.spine)
        if not isinstance(description, str):
            raise ValidationError(f"description must be a string, got {description!r}")
        record, table = training_data.create(
            self,
            start_time=start_time,
            end_time=end_time,
            description=description,
            split=split,
            engine=engine,
        )
        self.last_training_dataset_version = record.version
        self._transformers[record.version] = self._build_transformer(record.transformation_stats)
        if not self._serving_pinned:  # "the latest version" just changed
            self._serving = None
        return record.version, table

    def _split_spec(self, split: str, seed: int, **options: Any) -> dict[str, Any]:
        from fti.features import training_data

        return training_data.split_spec(split, seed, self.query.spine, **options)

    # --- transformations ------------------------------------------------------------------
    def transformer(self, training_dataset_version: int | None = None) -> Transformer:
        """The fitted transformations of ``training_dataset_version`` (default: the serving one,
        see :meth:`init_serving`): what training data, batch data and online vectors all apply."""
        return self._transformer(self._resolve_version(training_dataset_version))

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
        """``version``, else the serving one: that of the current serving state, else the latest."""
        if version is not None:
            return version
        if self._serving is not None:
            return self._serving.training_dataset_version
        versions = self.training_dataset_versions()
        return versions[-1] if versions else None

    # --- batch data -----------------------------------------------------------------------
    def get_batch_data(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        *,
        with_keys: bool = False,
        return_type: str = "pandas",
        training_dataset_version: int | None = None,
        order: bool = True,
        engine: str = "duckdb",
    ) -> Any:
        """Transformed features of the spine rows in ``[start_time, end_time)``, for batch inference.

        Uses the latest data of every group, joined point-in-time correctly, and the fitted
        statistics of ``training_dataset_version`` (default: the serving version, see
        :meth:`init_serving`). Labels are not included.

        Args:
            with_keys: Also return the spine's primary key and event-time columns (first).
            return_type: ``"pandas"``, ``"arrow"`` or ``"polars"`` (``engine="duckdb"``).
            order: Sort rows by spine event time, then key. ``False`` returns them in the query
                engine's order, which saves the sort (about 30% of the join time at 1M rows).
            engine: ``"duckdb"``, or ``"spark"``: a lazy Spark DataFrame joined and transformed
                on ``project.spark()`` (see :mod:`fti.spark`).
        """
        from fti.features import batch_data

        return batch_data.get_batch_data(
            self, start_time, end_time, with_keys=with_keys, return_type=return_type,
            training_dataset_version=training_dataset_version, order=order, engine=engine,
        )  # fmt: skip

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
        from fti.features import batch_data

        return batch_data.iter_batch_data(
            self,
            start_time,
            end_time,
            batch_rows=batch_rows,
            with_keys=with_keys,
            training_dataset_version=training_dataset_version,
            threads=threads,
            memory_limit=memory_limit,
        )

    # --- online feature vectors -------------------------------------------------------------
    def serving(self, training_dataset_version: int | None = None) -> FeatureViewServing:
        """Online feature vectors with the fitted statistics of ``training_dataset_version``
        (default: the latest version), compiled now: its calls query no catalog.

        The model server holds one per loaded model version; ``get_feature_vector(s)`` of this
        view use the one :meth:`init_serving` prepared.

        Raises:
            NotFoundError: no such training-dataset version.
        """
        if training_dataset_version is None:
            versions = self.training_dataset_versions()
            return self._compile(versions[-1] if versions else None)
        self.training_dataset(training_dataset_version)  # NotFoundError when unknown
        return self._compile(training_dataset_version)

    def _compile(self, version: int | None) -> FeatureViewServing:
        from fti.features.vectors import FeatureViewServing

        return FeatureViewServing(self, version, self._transformer(version), self._project.backends.online)

    def init_serving(self, training_dataset_version: int | None = None) -> None:
        """Prepare online serving with the fitted statistics of ``training_dataset_version``
        (default: the latest version). Later calls compile nothing and query no catalog."""
        if training_dataset_version is not None:
            self._serving = self.serving(training_dataset_version)
            self._serving_pinned = True
        else:
            self._serving = self._compile(self._resolve_version(None))

    def _current_serving(self) -> FeatureViewServing:
        if self._serving is None:
            self.init_serving()
        assert self._serving is not None
        return self._serving

    def get_feature_vector(
        self,
        entry: Mapping[str, Any],
        passed_features: Mapping[str, Any] | None = None,
        allow_missing: bool = False,
    ) -> list[Any]:
        """The transformed model-input vector of one entity, from the online store.

        See :meth:`FeatureViewServing.get_feature_vector
        <fti.features.vectors.FeatureViewServing.get_feature_vector>`; this view's serving state
        is the one :meth:`init_serving` prepared (by default, at the first call).
        """
        return self._current_serving().get_feature_vector(entry, passed_features, allow_missing)

    def get_feature_vectors(
        self,
        entries: Sequence[Mapping[str, Any]],
        passed_features: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        return_type: str = "list",
        allow_missing: bool = False,
    ) -> Any:
        """Transformed vectors of many entities: one online read per feature group for all of them.

        See :meth:`FeatureViewServing.get_feature_vectors
        <fti.features.vectors.FeatureViewServing.get_feature_vectors>`.
        """
        return self._current_serving().get_feature_vectors(
            entries, passed_features, return_type, allow_missing
        )
