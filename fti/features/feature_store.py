"""The feature store facade: create, find and list the feature groups and views of a project.

Thin by design: the definition checks are in :mod:`fti.features.definitions`, the catalog records
in :mod:`fti.features.records`, and everything a group or a view does is in the entity itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fti._names import check_name, check_version
from fti.errors import AlreadyExistsError, NotFoundError, ValidationError
from fti.features import definitions, records
from fti.features.feature_group import FeatureGroup
from fti.types import Feature

if TYPE_CHECKING:
    from fti.features._project import FeatureProject
    from fti.features.embeddings import EmbeddingIndex
    from fti.features.feature_view import FeatureView
    from fti.features.query import Query
    from fti.features.records import FeatureViewMeta
    from fti.features.search import CommitEntry, FeatureGroupInfo, FeatureInfo, FeatureViewInfo
    from fti.paging import Page
    from fti.storage.metadata.base import Catalog

log = logging.getLogger("fti.features")


class FeatureStore:
    """Feature groups and feature views of one project. Get it as ``project.feature_store``."""

    def __init__(self, project: FeatureProject) -> None:
        self._project = project

    @property
    def _catalog(self) -> Catalog:
        return self._project.backends.catalog

    # --- feature groups -------------------------------------------------------------------
    def get_or_create_feature_group(
        self,
        name: str,
        version: int = 1,
        *,
        primary_key: Sequence[str],
        event_time: str | None = None,
        online_enabled: bool = False,
        description: str | None = None,
        features: Sequence[Feature] | None = None,
        expectation_suite: Any = None,
        embedding_index: EmbeddingIndex | None = None,
        event_time_unit: str | None = None,
    ) -> FeatureGroup:
        """Return the feature group ``name`` at ``version``, creating it if it does not exist.

        An existing group is returned only when the arguments given match it: the key, event
        time and online flag always count; the description, features, expectation suite and
        event-time unit when given (None: whatever is stored).

        Args:
            name: 1-63 lowercase letters, digits or ``_``.
            version: An integer >= 1. A changed definition needs a new version.
            primary_key: The column(s) identifying an entity; never null.
            event_time: The column with the time each row's values became true (tz-aware
                timestamps, or integer epoch times, see ``event_time_unit``), or None for groups
                without history semantics.
            online_enabled: Keep the latest row per key in the online store.
            description: Free text (default: empty for a new group).
            features: Declare the schema up front; otherwise the first insert fixes it.
            expectation_suite: A ``pandera.pandas.DataFrameSchema`` checked on every insert.
            embedding_index: ``fti.EmbeddingIndex(column, metric=...)`` on a ``vector[N]`` feature
                of an online-enabled group: similarity search with ``fg.find_neighbors``.
            event_time_unit: ``"s"``, ``"ms"`` (Hopsworks' epoch milliseconds), ``"us"`` or
                ``"ns"``: inserted integer event times count these units since the epoch and are
                stored as timestamps. Without it, integers are read by their magnitude, with a note.

        Raises:
            ValidationError: a bad name, version, key, event time, flag, feature list or suite.
            AlreadyExistsError: the version exists with a different definition; the message says
                what differs and how to change it.
        """
        return self._group(
            name, version, primary_key, event_time, online_enabled, description, features,
            expectation_suite, event_time_unit, embedding_index, exist_ok=True,
        )  # fmt: skip

    def create_feature_group(
        self,
        name: str,
        version: int | None = None,
        *,
        primary_key: Sequence[str],
        event_time: str | None = None,
        online_enabled: bool = False,
        description: str = "",
        features: Sequence[Feature] | None = None,
        expectation_suite: Any = None,
        event_time_unit: str | None = None,
        embedding_index: EmbeddingIndex | None = None,
    ) -> FeatureGroup:
        """Create the feature group ``name`` (Hopsworks' name): like
        :meth:`get_or_create_feature_group`, but an existing version is an error.

        Args:
            version: An integer >= 1; None (Hopsworks' default) creates the version after the
                newest one (1 for a new name).

        Raises:
            AlreadyExistsError: the version exists already (get it with ``get_feature_group``).
        """
        if version is None:
            check_name(name, "feature group")
        return self._group(
            name, self._next_version(name) if version is None else version, primary_key, event_time, online_enabled,
            description, features, expectation_suite, event_time_unit, embedding_index, exist_ok=False,
        )  # fmt: skip

    def _group(
        self,
        name: str,
        version: int,
        primary_key: Sequence[str],
        event_time: str | None,
        online_enabled: bool,
        description: str | None,
        features: Sequence[Feature] | None,
        expectation_suite: Any,
        event_time_unit: str | None,
        embedding_index: EmbeddingIndex | None,
        *,
        exist_ok: bool,
    ) -> FeatureGroup:
        check_name(name, "feature group")
        check_version(version, "feature group")
        pk, event_time, declared, suite = definitions.check_group(
            primary_key, event_time, online_enabled, features, expectation_suite, event_time_unit
        )
        if description is not None and not isinstance(description, str):
            raise ValidationError(f"description must be a string, got {description!r}")
        from fti.features.embeddings import check_index

        index = check_index(embedding_index, online_enabled, declared, name)
        existing = records.find_feature_group(self._catalog, self._project.id, name, version)
        if existing is not None and index is not None and existing.embedding_index != index:
            raise AlreadyExistsError(
                f"feature group {name!r} version {version} already exists with embedding index "
                f"{existing.embedding_index}; create version {version + 1} for {index}"
            )
        if existing is not None:
            if not exist_ok:
                raise AlreadyExistsError(
                    f"feature group {name!r} version {version} already exists; get it with "
                    f"fs.get_feature_group({name!r}, {version}) or create version "
                    f"{self._next_version(name)}"
                )
            definitions.check_unchanged(
                existing, pk, event_time, online_enabled, description, declared, suite, event_time_unit
            )
            return FeatureGroup(self._project, existing)
        values = {
            "name": name,
            "version": version,
            "primary_key": pk,
            "event_time": event_time,
            "event_time_unit": event_time_unit,
            "online_enabled": online_enabled,
            "description": description or "",
            "features": None if declared is None else [f.to_dict() for f in declared],
            "expectation_suite": suite,
            "embedding_index": index,
            "table_name": f"{self._project.name}__{name}__v{version}",
        }
        # False: created concurrently; the winner's row is returned (create_*: an error)
        created = records.insert_feature_group(self._catalog, self._project.id, values)
        if not created and not exist_ok:
            raise AlreadyExistsError(
                f"feature group {name!r} version {version} was just created by another writer"
            )
        found = records.find_feature_group(self._catalog, self._project.id, name, version)
        assert found is not None
        return FeatureGroup(self._project, found)

    def _next_version(self, name: str) -> int:
        return max((fg.version for fg in self.get_feature_groups(name)), default=0) + 1

    def get_or_create_external_feature_group(
        self,
        name: str,
        version: int = 1,
        *,
        source: Any,
        query: str | None = None,
        params: Mapping[str, Any] | None = None,
        primary_key: Sequence[str],
        event_time: str | None = None,
        description: str | None = None,
        features: Sequence[Feature] | None = None,
    ) -> FeatureGroup:
        """Return the external feature group ``name``, creating it if it does not exist: rows read
        from ``source`` by ``query`` whenever the group is read (offline only; see
        :mod:`fti.features.external`).

        Args:
            source: ``fti.sources.SQL(...)`` or ``fti.sources.Files(...)``; credentials in its
                secret (a password in the URL is refused: it would be stored in the catalog).
            query: The SQL a SQL source runs; for files, optional DuckDB SQL over ``source``.
            params: The query's parameters (``:name`` for SQL, ``$name`` for DuckDB).
            primary_key, event_time, description: As for :meth:`get_or_create_feature_group`.
            features: The schema; default: read from the query's first rows now.

        Raises:
            ValidationError: a bad definition, or the query fails (with the database's message).
            SchemaError: the query returns types fti cannot store (naive timestamps...).
            AlreadyExistsError: the version exists with another source, query or definition.
        """
        from fti.features import external

        check_name(name, "feature group")
        check_version(version, "feature group")
        meta = external.get_or_create(
            self._project,
            name,
            version,
            source,
            query,
            params,
            primary_key,
            event_time,
            description,
            features,
        )
        return FeatureGroup(self._project, meta)

    def get_feature_group(self, name: str, version: int | None = None) -> FeatureGroup:
        """The feature group ``name`` at ``version`` (None = the latest version)."""
        check_name(name, "feature group")
        check_version(version, "feature group", allow_none=True)
        meta = records.find_feature_group(self._catalog, self._project.id, name, version)
        if meta is None:
            versions = [fg.version for fg in self.list_feature_groups() if fg.name == name]
            hint = f"existing versions: {versions}" if versions else "it does not exist in this project"
            what = f"feature group {name!r}" + (f" version {version}" if version else "")
            raise NotFoundError(f"{what} not found in project {self._project.name!r} ({hint})")
        return FeatureGroup(self._project, meta)

    def get_feature_groups(self, name: str) -> list[FeatureGroup]:
        """Every version of the feature group ``name``, oldest first (Hopsworks' name); an empty
        list when there is none."""
        check_name(name, "feature group")
        return [g for g in self.list_feature_groups() if g.name == name]

    def list_feature_groups(self) -> list[FeatureGroup]:
        """Every feature group of the project, by name then version."""
        return [
            FeatureGroup(self._project, m)
            for m in records.list_feature_groups(self._catalog, self._project.id)
        ]

    def search_feature_groups(
        self, query: str = "", *, tag: str | None = None, offset: int = 0, limit: int = 50
    ) -> Page[FeatureGroupInfo]:
        """Feature group versions whose name, description or a tag contains ``query`` (see
        :mod:`fti.features.search`), with their commit activity and tags, one page at a time."""
        from fti.features import search

        return search.search_feature_groups(self._project, query, tag=tag, offset=offset, limit=limit)

    def search_features(self, query: str, *, offset: int = 0, limit: int = 50) -> Page[FeatureInfo]:
        """A page of features (columns of any group version) whose name contains ``query``."""
        from fti.features import search

        return search.search_features(self._project, query, offset=offset, limit=limit)

    def recent_commits(self, limit: int = 10) -> list[CommitEntry]:
        """The latest commits of any feature group of the project, newest first."""
        from fti.features import search

        return search.recent_commits(self._project, limit)

    def materialize_all(self) -> int:
        """Catch up every group, each compared with its offline table; returns online rows written.

        Records offline commits the catalog is missing (:meth:`FeatureGroup.reconcile`) and brings
        every online store that lags its offline table up to date, whatever wrote the table.
        ``fti.connect`` does the same for the groups the catalog shows behind only (a writer died,
        an online store was emptied; see :mod:`fti.features.recovery`), without opening the
        others. A group that cannot be caught up is logged and skipped.
        """
        from fti.features import recovery

        return recovery.catch_up(self._project, every_group=True)

    # --- feature views --------------------------------------------------------------------
    def get_or_create_feature_view(
        self,
        name: str,
        version: int = 1,
        *,
        query: Query,
        labels: Sequence[str] = (),
        transformations: Mapping[str, str] | None = None,
        description: str = "",
        on_demand: Sequence[Any] | None = None,
        request_fields: Sequence[str] | None = None,
        transformation_functions: Any = None,
        logging_enabled: bool | None = None,
    ) -> FeatureView:
        """Return the feature view ``name`` at ``version``, creating it if it does not exist.

        Args:
            name: 1-63 lowercase letters, digits or ``_``.
            version: An integer >= 1. A changed definition needs a new version.
            query: ``fg.select(...)`` optionally ``.join(...)``-ed with other groups; the first
                group is the spine whose rows and event times make the training rows.
            labels: Columns of the query that are targets (never part of feature vectors).
            transformations: Feature name -> transformation (see :mod:`fti.features.transformations`).
            description: Free text.
            on_demand: Functions decorated with ``@fti.on_demand`` (or their import paths)
                computing request-time features in training, batch and serving alike (see
                :mod:`fti.features.on_demand`); recorded with their source hash.
            request_fields: Columns a serving request must send (never looked up online).
            transformation_functions: Hopsworks' form of ``transformations``:
                ``[label_encoder("category")]`` (see :mod:`fti.features.builtin_transformations`).
            logging_enabled: Accepted for Hopsworks compatibility: ``fv.log(...)`` always works.

        Raises:
            SchemaError: a label or transformed feature is not in the query, or has the wrong dtype.
            ValidationError: an unknown transformation name; no feature columns besides labels.
            AlreadyExistsError: the version exists with a different definition.
        """
        return self._view_of(
            name, version, query, labels, transformations, description, transformation_functions,
            logging_enabled, on_demand, request_fields, exist_ok=True,
        )  # fmt: skip

    def create_feature_view(
        self,
        name: str,
        version: int | None = None,
        *,
        query: Query,
        labels: Sequence[str] = (),
        transformations: Mapping[str, str] | None = None,
        description: str = "",
        transformation_functions: Any = None,
        logging_enabled: bool | None = None,
        on_demand: Sequence[Any] | None = None,
        request_fields: Sequence[str] | None = None,
    ) -> FeatureView:
        """Create the feature view ``name`` (Hopsworks' name): like
        :meth:`get_or_create_feature_view`, but an existing version is an error, and
        ``version=None`` (Hopsworks' default) creates the version after the newest one.

        Raises:
            AlreadyExistsError: the version exists already (get it with ``get_feature_view``).
        """
        if version is None:
            version = max((v.version for v in self.get_feature_views(name)), default=0) + 1
        return self._view_of(
            name, version, query, labels, transformations, description,
            transformation_functions, logging_enabled, on_demand, request_fields, exist_ok=False,
        )  # fmt: skip

    def _view_of(
        self,
        name: str,
        version: int,
        query: Query,
        labels: Sequence[str],
        transformations: Mapping[str, str] | None,
        description: str,
        transformation_functions: Any,
        logging_enabled: bool | None,
        on_demand: Sequence[Any] | None,
        request_fields: Sequence[str] | None,
        *,
        exist_ok: bool,
    ) -> FeatureView:
        from fti.features.builtin_transformations import to_specs

        check_name(name, "feature view")
        check_version(version, "feature view")
        if logging_enabled is not None and not isinstance(logging_enabled, bool):
            raise ValidationError(f"logging_enabled must be True or False, got {logging_enabled!r}")
        functions = to_specs(transformation_functions)
        if functions and transformations:
            raise ValidationError("pass transformations or transformation_functions, not both")
        definition = definitions.check_view(
            query, labels, functions or transformations, description, on_demand, request_fields
        )
        existing = records.find_feature_view(self._catalog, self._project.id, name, version)
        if existing is not None and not exist_ok:
            raise AlreadyExistsError(
                f"feature view {name!r} version {version} already exists; get it with "
                f"fs.get_feature_view({name!r}, {version}) or create version {version + 1}"
            )
        if existing is None:
            # False: created concurrently; compared with the winner's below
            created = records.insert_feature_view(
                self._catalog,
                self._project.id,
                {"name": name, "version": version, "description": description, **definition},
            )
            if not created and not exist_ok:
                raise AlreadyExistsError(
                    f"feature view {name!r} version {version} was just created by another writer"
                )
            existing = records.find_feature_view(self._catalog, self._project.id, name, version)
            assert existing is not None
        stored = {
            "query": existing.query,
            "labels": existing.labels,
            "transformations": existing.transformations,
            "on_demand": existing.on_demand,
            "request_fields": existing.request_fields,
        }
        if stored != definition:
            changed = [k for k in definition if stored[k] != definition[k]]
            raise AlreadyExistsError(
                f"feature view {name!r} version {version} already exists with a different {', '.join(changed)}; "
                f"create version {version + 1} instead"
            )
        from fti.features.feature_view import FeatureView

        return FeatureView(self._project, existing, query)

    def get_transformation_function(self, name: str, version: int | None = None) -> Any:
        """The built-in transformation ``name`` (Hopsworks' older form:
        ``transformation_functions={"category": fs.get_transformation_function(name="label_encoder")}``)."""
        from fti.features.builtin_transformations import get_transformation_function

        return get_transformation_function(name, version)

    def get_feature_view(self, name: str, version: int | None = None) -> FeatureView:
        """The feature view ``name`` at ``version`` (None = the latest version)."""
        check_name(name, "feature view")
        check_version(version, "feature view", allow_none=True)
        meta = records.find_feature_view(self._catalog, self._project.id, name, version)
        if meta is None:
            versions = [m.version for m in records.list_feature_views(self._catalog, self._project.id, name)]
            hint = f"existing versions: {versions}" if versions else "it does not exist in this project"
            what = f"feature view {name!r}" + (f" version {version}" if version else "")
            raise NotFoundError(f"{what} not found in project {self._project.name!r} ({hint})")
        return self._view(meta)

    def get_feature_views(self, name: str) -> list[FeatureView]:
        """Every version of the feature view ``name``, oldest first (Hopsworks' name)."""
        check_name(name, "feature view")
        return [self._view(m) for m in records.list_feature_views(self._catalog, self._project.id, name)]

    def list_feature_views(self) -> list[FeatureView]:
        """Every feature view of the project, by name then version."""
        return [self._view(m) for m in records.list_feature_views(self._catalog, self._project.id)]

    def search_feature_views(
        self,
        query: str = "",
        *,
        tag: str | None = None,
        feature_group: tuple[str, int] | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[FeatureViewInfo]:
        """Like :meth:`search_feature_groups`; ``feature_group=(name, version)``: views reading it."""
        from fti.features import search

        return search.search_feature_views(
            self._project, query, tag=tag, feature_group=feature_group, offset=offset, limit=limit
        )

    def _view(self, meta: FeatureViewMeta) -> FeatureView:
        from fti.features.feature_view import FeatureView

        return FeatureView(self._project, meta)  # its query is resolved on first use
