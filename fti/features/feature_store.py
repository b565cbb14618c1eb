"""The feature store facade: create, find and list feature groups (and, later, feature views).

Thin by design: each operation delegates to ``ingestion``, ``statistics`` and the storage roles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from fti._names import check_name, check_version
from fti.errors import AlreadyExistsError, NotFoundError, ValidationError
from fti.features.feature_group import FeatureGroup, FeatureGroupMeta
from fti.features.ingestion import CommitInfo, InsertResult
from fti.storage.metadata.tables import feature_groups, fg_commits
from fti.storage.metadata.tables._base import utcnow
from fti.types import Feature

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_view import FeatureView
    from fti.features.query import Query
    from fti.features.records import CommitEntry, FeatureGroupInfo, FeatureInfo, FeatureViewInfo
    from fti.paging import Page
    from fti.project import Project


class FeatureStore:
    """Feature groups of one project. Get it as ``project.feature_store``."""

    def __init__(self, project: Project) -> None:
        self._project = project

    @property
    def _catalog(self) -> Any:
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
        description: str = "",
        features: Sequence[Feature] | None = None,
        expectation_suite: Any = None,
    ) -> FeatureGroup:
        """Return the feature group ``name`` at ``version``, creating it if it does not exist.

        Args:
            name: 1-63 lowercase letters, digits or ``_``.
            version: An integer >= 1. A changed definition needs a new version.
            primary_key: The column(s) identifying an entity; never null.
            event_time: The column with the time each row's values became true (tz-aware), or
                None for groups without history semantics.
            online_enabled: Keep the latest row per key in the online store.
            description: Free text.
            features: Declare the schema up front; otherwise the first insert fixes it.
            expectation_suite: A ``pandera.pandas.DataFrameSchema`` checked on every insert.

        Raises:
            AlreadyExistsError: the version exists with a different key, event time or online flag.
        """
        check_name(name, "feature group")
        check_version(version, "feature group")
        pk = _check_primary_key(primary_key)
        if event_time is not None and (not isinstance(event_time, str) or not event_time):
            raise ValidationError(f"event_time must be a column name or None, got {event_time!r}")
        if event_time in pk:
            raise ValidationError(f"event_time {event_time!r} cannot also be a primary-key column")
        if not isinstance(online_enabled, bool):
            raise ValidationError(f"online_enabled must be True or False, got {online_enabled!r}")
        declared = _check_features(features, pk, event_time)
        from fti.features.validation import suite_to_json

        suite = suite_to_json(expectation_suite)

        existing = self._find(name, version)
        if existing is not None:
            differences = [
                f"{field}: stored {stored!r}, given {given!r}"
                for field, stored, given in (
                    ("primary_key", existing.primary_key, pk),
                    ("event_time", existing.event_time, event_time),
                    ("online_enabled", existing.online_enabled, online_enabled),
                )
                if stored != given
            ]
            if differences:
                raise AlreadyExistsError(
                    f"feature group {name!r} version {version} already exists with a different "
                    f"definition ({'; '.join(differences)}); create version {version + 1} instead"
                )
            return FeatureGroup(self._project, existing)

        now = utcnow()
        values = {
            "project_id": self._project.id,
            "name": name,
            "version": version,
            "primary_key": pk,
            "event_time": event_time,
            "online_enabled": online_enabled,
            "description": description,
            "features": None if declared is None else [f.to_dict() for f in declared],
            "expectation_suite": suite,
            "table_name": f"{self._project.name}__{name}__v{version}",
            "created_at": now,
        }
        from sqlalchemy.exc import IntegrityError as SqlIntegrityError

        try:
            with self._catalog.engine.begin() as conn:
                conn.execute(insert(feature_groups).values(**values))
        except SqlIntegrityError:  # created concurrently: return the winner's
            pass
        found = self._find(name, version)
        assert found is not None
        return FeatureGroup(self._project, found)

    def get_feature_group(self, name: str, version: int | None = None) -> FeatureGroup:
        """The feature group ``name`` at ``version`` (None = the latest version)."""
        check_name(name, "feature group")
        check_version(version, "feature group", allow_none=True)
        meta = self._find(name, version)
        if meta is None:
            versions = [fg.version for fg in self.list_feature_groups() if fg.name == name]
            hint = f"existing versions: {versions}" if versions else "it does not exist in this project"
            what = f"feature group {name!r}" + (f" version {version}" if version else "")
            raise NotFoundError(f"{what} not found in project {self._project.name!r} ({hint})")
        return FeatureGroup(self._project, meta)

    def list_feature_groups(self) -> list[FeatureGroup]:
        """Every feature group of the project, by name then version."""
        query = (
            select(feature_groups)
            .where(feature_groups.c.project_id == self._project.id)
            .order_by(feature_groups.c.name, feature_groups.c.version)
        )
        with self._catalog.engine.connect() as conn:
            return [FeatureGroup(self._project, _meta(row)) for row in conn.execute(query).mappings()]

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

    def search_feature_views(
        self, query: str = "", *, tag: str | None = None, feature_group: tuple[str, int] | None = None,
        offset: int = 0, limit: int = 50,
    ) -> Page[FeatureViewInfo]:  # fmt: skip
        """Like :meth:`search_feature_groups`; ``feature_group=(name, version)``: views reading it."""
        from fti.features import search

        return search.search_feature_views(self._project, query, tag=tag, feature_group=feature_group,
                                           offset=offset, limit=limit)  # fmt: skip

    def recent_commits(self, limit: int = 10) -> list[CommitEntry]:
        """The latest commits of any feature group of the project, newest first."""
        from fti.features import search

        return search.recent_commits(self._project, limit)

    def _find(self, name: str, version: int | None) -> FeatureGroupMeta | None:
        query = select(feature_groups).where(
            feature_groups.c.project_id == self._project.id, feature_groups.c.name == name
        )
        if version is None:
            query = query.order_by(feature_groups.c.version.desc()).limit(1)
        else:
            query = query.where(feature_groups.c.version == version)
        with self._catalog.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _meta(row)

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

        Raises:
            SchemaError: a label or transformed feature is not in the query, or has the wrong dtype.
            ValidationError: an unknown transformation name.
            AlreadyExistsError: the version exists with a different definition.
        """
        from fti.features import feature_view

        return feature_view.get_or_create(
            self._project,
            name,
            version,
            query=query,
            labels=labels,
            transformations=transformations,
            description=description,
        )

    def get_feature_view(self, name: str, version: int | None = None) -> FeatureView:
        """The feature view ``name`` at ``version`` (None = the latest version)."""
        from fti.features import feature_view

        return feature_view.get(self._project, name, version)

    def list_feature_views(self) -> list[FeatureView]:
        """Every feature view of the project, by name then version."""
        from fti.features import feature_view

        return [feature_view._load(self._project, m) for m in feature_view.list_all(self._project)]

    # --- internals used by FeatureGroup ---------------------------------------------------
    def _set_features(self, meta: FeatureGroupMeta, features: list[Feature] | None) -> FeatureGroupMeta:
        with self._catalog.engine.begin() as conn:
            conn.execute(
                update(feature_groups)
                .where(feature_groups.c.id == meta.id)
                .values(features=None if features is None else [f.to_dict() for f in features])
            )
        from dataclasses import replace

        return replace(meta, features=features)

    def _commit_insert(
        self,
        fg: FeatureGroup,
        table: pa.Table,
        status: str,
        report: dict[str, Any] | None,
        *,
        merge: bool = True,
        with_statistics: bool = True,
    ) -> InsertResult:
        offline = self._project.backends.offline
        previous = offline.version(fg.table_name)
        merge_keys = fg.key_columns
        upsert = merge and previous is not None
        version = offline.write(fg.table_name, table, merge_keys=merge_keys if upsert else None)
        stats = None
        if with_statistics:
            from fti.features.statistics import compute_statistics  # DuckDB: only when needed

            # On the first commit the table is exactly this insert: skip re-reading it from disk.
            stats = compute_statistics(
                table if previous is None else offline.dataset(fg.table_name, version=version)
            )
        self._record_commit(fg, version, "insert", table.num_rows, status, report, stats)
        online_rows = 0
        if fg.online_enabled:
            online = self._project.backends.online
            if online.applied_version(fg.table_name) == previous:
                from fti.features.ingestion import latest_per_key

                latest = latest_per_key(table, fg.primary_key, fg.event_time)
                online_rows = online.write(
                    fg.table_name,
                    latest,
                    key_columns=fg.primary_key,
                    event_time=fg.event_time,
                    version=version,
                )
            else:  # the online store missed an earlier commit: catch up from the offline table
                online_rows = self._materialize(fg)
        return InsertResult(
            version=version, rows=table.num_rows, validation=status, report=report, online_rows=online_rows
        )

    def _commit_stream(
        self, fg: FeatureGroup, batches: Iterable[Any], validation: str, *, merge: bool, unique_keys: bool
    ) -> InsertResult:
        """Check each piece of ``batches`` and write them all as one offline commit."""
        import pyarrow as pa

        from fti.features import ingestion

        pieces = iter(batches)
        first = next(pieces, None)
        if first is None:
            raise ValidationError(f"cannot insert an empty stream into feature group {fg.name!r}")
        table, new_schema = ingestion.prepare(fg, first, check_unique=not unique_keys)
        status, _ = ingestion.run_validation(fg, table, validation)
        if new_schema is not None:
            fg._meta = self._set_features(fg._meta, new_schema)
        failure: list[BaseException] = []
        rows = 0

        def checked() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            try:
                current: pa.Table | None = table
                while current is not None:
                    rows += current.num_rows
                    yield from current.to_batches()
                    piece = next(pieces, None)
                    if piece is None:
                        current = None
                    else:
                        current, _ = ingestion.prepare(fg, piece, check_unique=not unique_keys)
                        ingestion.run_validation(fg, current, validation)
            except BaseException as exc:  # surfaces through the writer as a generic error
                failure.append(exc)
                raise

        offline = self._project.backends.offline
        merge_keys = fg.key_columns
        upsert = merge and offline.version(fg.table_name) is not None
        reader = pa.RecordBatchReader.from_batches(table.schema, checked())
        try:
            version = offline.write(fg.table_name, reader, merge_keys=merge_keys if upsert else None)
        except Exception:
            if new_schema is not None:  # nothing was committed: the group has no schema yet
                fg._meta = self._set_features(fg._meta, None)
            if failure:
                raise failure[0] from None
            raise
        self._record_commit(fg, version, "insert", rows, status, None)
        online_rows = self._materialize(fg) if fg.online_enabled else 0
        return InsertResult(version=version, rows=rows, validation=status, online_rows=online_rows)

    def _record_commit(
        self,
        fg: FeatureGroup,
        version: int,
        operation: str,
        rows: int,
        status: str,
        report: dict[str, Any] | None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        with self._catalog.engine.begin() as conn:
            conn.execute(
                insert(fg_commits).values(
                    feature_group_id=fg.id,
                    delta_version=version,
                    committed_at=utcnow(),
                    operation=operation,
                    rows_inserted=rows,
                    validation_status=status,
                    validation_report=report,
                    statistics=stats,
                )
            )

    def _materialize(self, fg: FeatureGroup) -> int:
        if not fg.online_enabled:
            return 0
        offline = self._project.backends.offline
        online = self._project.backends.online
        version = offline.version(fg.table_name)
        if version is None or online.applied_version(fg.table_name) == version:
            return 0
        from fti.features.ingestion import latest_per_key

        latest = latest_per_key(
            offline.dataset(fg.table_name, version=version), fg.primary_key, fg.event_time
        )
        return online.write(
            fg.table_name, latest, key_columns=fg.primary_key, event_time=fg.event_time, version=version
        )

    def materialize_all(self) -> int:
        """Catch up every online-enabled group whose online store lags the offline store."""
        query = select(feature_groups).where(
            feature_groups.c.project_id == self._project.id, feature_groups.c.online_enabled.is_(True)
        )
        with self._catalog.engine.connect() as conn:
            metas = [_meta(row) for row in conn.execute(query).mappings()]
        return sum(self._materialize(FeatureGroup(self._project, m)) for m in metas)

    def _delete(self, fg: FeatureGroup) -> None:
        backends = self._project.backends
        if fg.online_enabled:
            backends.online.delete_table(fg.table_name)
        backends.offline.delete(fg.table_name)
        with self._catalog.engine.begin() as conn:
            conn.execute(delete(fg_commits).where(fg_commits.c.feature_group_id == fg.id))
            conn.execute(delete(feature_groups).where(feature_groups.c.id == fg.id))

    def _commits(self, fg: FeatureGroup) -> list[CommitInfo]:
        query = (
            select(fg_commits)
            .where(fg_commits.c.feature_group_id == fg.id)
            .order_by(fg_commits.c.delta_version)
        )
        with self._catalog.engine.connect() as conn:
            return [
                CommitInfo(
                    version=int(r["delta_version"]),
                    committed_at=r["committed_at"],
                    operation=r["operation"],
                    rows_inserted=int(r["rows_inserted"]),
                    validation_status=r["validation_status"],
                    validation_report=r["validation_report"],
                )
                for r in conn.execute(query).mappings()
            ]

    def _statistics(self, fg: FeatureGroup, version: int | None) -> dict[str, dict[str, Any]]:
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
            raise ValidationError(f"statistics version must be a commit version >= 0, got {version!r}")
        query = select(fg_commits.c.delta_version, fg_commits.c.statistics).where(
            fg_commits.c.feature_group_id == fg.id
        )
        if version is None:
            query = query.order_by(fg_commits.c.delta_version.desc()).limit(1)
        else:
            query = query.where(fg_commits.c.delta_version == version)
        with self._catalog.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(
                f"feature group {fg.name!r} has no commit"
                + (f" with version {version}" if version is not None else " yet; insert data first")
            )
        if row.statistics is not None:
            return dict(row.statistics)
        from fti.features.statistics import compute_statistics

        return compute_statistics(
            self._project.backends.offline.dataset(fg.table_name, version=row.delta_version)
        )


def _check_primary_key(primary_key: Any) -> list[str]:
    if isinstance(primary_key, str):
        primary_key = [primary_key]
    if (
        not isinstance(primary_key, Sequence)
        or not primary_key
        or not all(isinstance(k, str) and k for k in primary_key)
    ):
        raise ValidationError(f"primary_key must be a non-empty list of column names, got {primary_key!r}")
    if len(set(primary_key)) != len(primary_key):
        raise ValidationError(f"primary_key lists a column twice: {primary_key!r}")
    return list(primary_key)


def _check_features(
    features: Sequence[Feature] | None, pk: list[str], event_time: str | None
) -> list[Feature] | None:
    if features is None:
        return None
    if not all(isinstance(f, Feature) for f in features) or not features:
        raise ValidationError("features must be a non-empty list of fti.Feature(name, dtype)")
    names = [f.name for f in features]
    missing = [c for c in [*pk, *([event_time] if event_time else [])] if c not in names]
    if missing:
        raise ValidationError(f"features must declare the key and event time columns; missing {missing}")
    if event_time and next(f for f in features if f.name == event_time).dtype != "timestamp":
        raise ValidationError(f"event time feature {event_time!r} must have dtype 'timestamp'")
    return list(features)


def _meta(row: Any) -> FeatureGroupMeta:
    return FeatureGroupMeta(
        id=int(row["id"]),
        name=row["name"],
        version=int(row["version"]),
        primary_key=list(row["primary_key"]),
        event_time=row["event_time"],
        online_enabled=bool(row["online_enabled"]),
        description=row["description"] or "",
        features=None if row["features"] is None else [Feature.from_dict(f) for f in row["features"]],
        expectation_suite=row["expectation_suite"],
        table_name=row["table_name"],
        created_at=row["created_at"],
    )
