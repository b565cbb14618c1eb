"""Feature views: a query over feature groups, label columns and model-dependent transformations.

A feature view is what a model is trained on and served from. This module holds its definition
and training API: training data comes from the point-in-time join of its query
(:mod:`fti.features.pit`), materialized as versioned training datasets
(:mod:`fti.features.training_data`). Batch data (:mod:`fti.features.batch_data`) and online
feature vectors (:class:`~fti.features.vectors.FeatureViewServing`) pass through the same fitted
:class:`~fti.features.transformations.Transformer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError
from fti.features._tagged import Tagged
from fti.features._view_mixins import NeighborsViewMixin, OnDemandViewMixin
from fti.features.batch_data import BATCH_RETURN_TYPES, DEFAULT_BATCH_ROWS, BatchScoring
from fti.features.records import FeatureViewMeta
from fti.features.view_logging import FeatureLogging

if TYPE_CHECKING:
    from fti.features._project import FeatureProject
    from fti.features.query import Query
    from fti.features.training_data import TrainingDataset
    from fti.features.transformations import Spec, Transformer
    from fti.features.vectors import FeatureViewServing
    from fti.registry.model_version import ModelVersion

__all__ = ["BATCH_RETURN_TYPES", "DEFAULT_BATCH_ROWS", "FeatureView", "FeatureViewMeta"]


class FeatureView(Tagged, BatchScoring, FeatureLogging, OnDemandViewMixin, NeighborsViewMixin):
    """A feature view. Obtain one from ``project.feature_store.get_or_create_feature_view``."""

    _tag_kind = "feature_view"

    def __init__(self, project: FeatureProject, meta: FeatureViewMeta, query: Query | None = None) -> None:
        from fti.features.transformations import parse

        self._project = project
        self._meta = meta
        self._query = query  # resolved on first use: a view whose group is gone can be listed, deleted
        self._specs: dict[str, Spec] = {f: parse(s, f) for f, s in meta.transformations.items()}
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
    def query(self) -> Query:
        """The groups and features the view joins; NotFoundError when a group it reads is gone."""
        if self._query is None:
            from fti.features.query import Query

            what = f"feature view {self.name!r} version {self.version}"
            self._query = Query.of_view(self._meta.query, self._project.feature_store, what)
        return self._query

    @cached_property
    def _inputs(self) -> list[tuple[str, str]]:
        return self.on_demand_plan.features  # the query's features and on-demand outputs

    def delete(self) -> None:
        """Delete the view and its training datasets; models trained from it keep their lineage."""
        from fti.features import training_data

        training_data.delete_view(self)

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

    def _repr_html_(self) -> str:
        """The view in a notebook: its query, labels, features and training datasets."""
        from fti._display import Card

        parts = self._meta.query["parts"]
        joins = [
            f"{p['group']}:{p['version']} on {', '.join(p.get('left_on') or p['on'])}" for p in parts[1:]
        ]
        card = Card("FeatureView", f"{self.name!r} version {self.version}")
        card.fields = [
            ("spine", f"{parts[0]['group']}:{parts[0]['version']}"),
            ("joins", joins or "none"),
            ("filter", "yes" if self._meta.query.get("filter") else "none"),
            ("labels", self.labels),
            ("description", self.description),
            ("training datasets", self.training_dataset_versions() or "none yet"),
            ("created", self._meta.created_at),
        ]
        try:
            inputs = self._inputs
        except NotFoundError as exc:  # a group it reads was deleted: show what is known
            card.fields.append(("problem", exc.message))
            inputs = []
        card.tables.append(
            (
                "features",
                ["name", "dtype", "transformation"],
                [[name, dtype, self._meta.transformations.get(name, "")] for name, dtype in inputs],
            )
        )
        return card.html()

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
            "on_demand": self.on_demand,
            "request_fields": self.request_fields,
            "primary_key": self._primary_key_or_none(),
            "created_at": self._meta.created_at.isoformat(),
            "training_dataset_versions": self.training_dataset_versions(),
        }

    def _primary_key_or_none(self) -> list[str] | None:
        try:
            return self.primary_key
        except NotFoundError:  # a group it reads was deleted: the view can still be listed
            return None

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

    def delete_training_dataset(self, training_dataset_version: int, *, force: bool = False) -> None:
        """Delete one training-dataset version: its rows and its record (Hopsworks' name).

        Raises:
            NotFoundError: no such version.
            ConflictError: a model version was trained on it (``force=True`` deletes it anyway).
        """
        from fti.features import training_data

        training_data.delete(self, training_dataset_version, force=force)
        self._transformers.pop(training_dataset_version, None)
        if self._serving is not None and self._serving.training_dataset_version == training_dataset_version:
            self._serving, self._serving_pinned = None, False
        if self._batch_version == training_dataset_version:
            self._batch_version = None
        if self.last_training_dataset_version == training_dataset_version:
            self.last_training_dataset_version = None

    def delete_all_training_datasets(self, *, force: bool = False) -> None:
        """Delete every training-dataset version of the view (see :meth:`delete_training_dataset`);
        nothing is deleted when one of them is refused."""
        from fti.features import training_data

        versions = self.training_dataset_versions()
        if not force:
            used = sorted(v for v in {m.training_dataset_version for m in self.models()} if v in versions)
            if used:
                training_data.delete(self, used[0], force=False)  # raises the ConflictError
        for version in versions:
            self.delete_training_dataset(version, force=force)

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
        from fti import _progress

        with _progress.task(f"{self.name}: training data (join, split, fit, write)"):
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

    # --- online feature vectors -------------------------------------------------------------
    def serving(self, training_dataset_version: int | None = None) -> FeatureViewServing:
        """Online feature vectors with the fitted statistics of ``training_dataset_version``
        (default: the latest), compiled now: its calls query no catalog. The model server holds
        one per loaded model version; ``get_feature_vector(s)`` use :meth:`init_serving`'s.

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
        return self._serving  # type: ignore[return-value]  # set by init_serving

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
        entry: Sequence[Mapping[str, Any]] | None = None,
        passed_features: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        return_type: str = "list",
        allow_missing: bool = False,
        *,
        entries: Sequence[Mapping[str, Any]] | None = None,
    ) -> Any:
        """Transformed vectors of many entities (``entry``, Hopsworks' name, or ``entries``): one
        online read per feature group for all of them. See :meth:`FeatureViewServing.get_feature_vectors
        <fti.features.vectors.FeatureViewServing.get_feature_vectors>`.
        """
        rows: Any = entries if entry is None else entry  # None: FeatureViewServing says what to pass
        return self._current_serving().get_feature_vectors(rows, passed_features, return_type, allow_missing)
