"""Feature groups: versioned tables of features with a primary key and optional event time.

A :class:`FeatureGroup` owns its behaviour: inserts (checked by :mod:`fti.features.ingestion`,
committed by :mod:`fti.features.commit`), schema changes, materialization, deletion, history,
statistics, reads and online lookups. Its catalog record is read and written through
:mod:`fti.features.records`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, ConflictError, NotFoundError, SchemaError, ValidationError
from fti.features import commit, external, records
from fti.features._pushed import Pushed
from fti.features._tagged import Tagged
from fti.features.embeddings import EmbeddingsMixin
from fti.features.external import External
from fti.features.group_edits import GroupEdits
from fti.features.group_queries import GroupQueries
from fti.features.group_upkeep import GroupUpkeep
from fti.features.ingestion import InsertResult
from fti.features.records import CommitInfo, FeatureGroupMeta
from fti.types import Feature, arrow_type, dtype_of

if TYPE_CHECKING:
    from fti.features._project import FeatureProject

__all__ = ["CommitInfo", "FeatureGroup", "FeatureGroupMeta", "InsertResult"]

log = logging.getLogger("fti.features")


class FeatureGroup(Tagged, GroupQueries, GroupEdits, GroupUpkeep, EmbeddingsMixin, Pushed, External):
    """A feature group. Obtain one from ``project.feature_store``.

    Offline, every insert is one Delta Lake commit (time travel by version or timestamp). Online
    (when ``online_enabled``), the latest row per primary key is kept for low-latency lookups.
    """

    _tag_kind = "feature_group"

    def __init__(self, project: FeatureProject, meta: FeatureGroupMeta) -> None:
        self._project = project
        self._meta = meta

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
    def primary_key(self) -> list[str]:
        return list(self._meta.primary_key)

    @property
    def event_time(self) -> str | None:
        return self._meta.event_time

    @property
    def key_columns(self) -> list[str]:
        """The primary key and the event time (if any): what identifies a row."""
        return [*self._meta.primary_key, *([self._meta.event_time] if self._meta.event_time else [])]

    @property
    def event_time_unit(self) -> str | None:
        """What integer event times count (``"ms"``: epoch milliseconds), or None (detected)."""
        return self._meta.event_time_unit

    @property
    def online_enabled(self) -> bool:
        return self._meta.online_enabled

    @property
    def description(self) -> str:
        return self._meta.description

    @property
    def features(self) -> list[Feature] | None:
        """The schema (None until fixed by the first insert or a declaration)."""
        return None if self._meta.features is None else list(self._meta.features)

    @property
    def expectation_suite(self) -> dict[str, Any] | None:
        return self._meta.expectation_suite

    @property
    def table_name(self) -> str:
        return self._meta.table_name

    @property
    def project(self) -> FeatureProject:
        return self._project

    def __repr__(self) -> str:
        return f"FeatureGroup(name={self.name!r}, version={self.version})"

    def _repr_html_(self) -> str:
        """The group in a notebook: definition, latest commit and schema (one catalog read)."""
        from fti._display import Card

        latest = self.latest_commit_version()
        card = Card("FeatureGroup", f"{self.name!r} version {self.version}")
        card.fields = [
            ("primary key", self.primary_key),
            (
                "event time",
                self.event_time
                and f"{self.event_time}" + (f" ({self.event_time_unit})" if self.event_time_unit else ""),
            ),
            ("online", self.online_enabled),
            ("description", self.description),
            ("latest commit", "none yet" if latest is None else latest),
            ("created", self._meta.created_at),
        ]
        card.tables.append(
            (
                "features",
                ["name", "dtype", "description"],
                [[f.name, f.dtype, f.description] for f in self.features or []],
            )
        )
        return card.html()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for ``fti fg show --json`` and the UI)."""
        return {
            "name": self.name,
            "version": self.version,
            "primary_key": self.primary_key,
            "event_time": self.event_time,
            "online_enabled": self.online_enabled,
            "embedding_index": self._meta.embedding_index,
            "description": self.description,
            "features": None if self.features is None else [f.to_dict() for f in self.features],
            "expectation_suite": self.expectation_suite,
            "created_at": self._meta.created_at.isoformat(),
            "latest_version": self.latest_commit_version(),
            "external": self.external,
        }

    # --- writing --------------------------------------------------------------------------
    def insert(
        self,
        df: Any,
        validation: str = "strict",
        *,
        write_mode: str = "upsert",
        statistics: bool = True,
        operation: str | None = None,
        overwrite: bool = False,
        storage: str | None = None,
        write_options: Mapping[str, Any] | None = None,
        validation_options: Mapping[str, Any] | None = None,
        wait: bool = True,
    ) -> InsertResult:
        """Validate ``df`` and commit it.

        Args:
            df: A pandas or polars DataFrame or a pyarrow Table with every feature of the group,
                or a Spark DataFrame (checked, written and committed by the Spark executors; see
                :mod:`fti.spark.ingest`). Column names with upper-case letters are lowered (as
                Hopsworks does); integer event times are epoch times (see ``event_time_unit``).
            validation: ``"strict"`` rejects the whole insert when an expectation fails;
                ``"warn"`` inserts and stores the report; ``"none"`` skips the suite.
            write_mode: ``"upsert"`` (default) replaces stored rows with the same primary key and
                event time, so re-running a pipeline is idempotent; ``"append"`` skips that
                check for append-only data whose (key, event time) never repeats, such as logs,
                so a commit costs in proportion to the insert rather than to the table.
            statistics: Compute the table's statistics at this commit: merged from the previous
                commit's state when this commit only adds rows, else a scan of the table (see
                :func:`fti.features.group_statistics.at_commit`). With False, ``statistics(version)``
                computes them on demand (and the next append recomputes them in full).
            operation: Hopsworks' name of ``write_mode``: ``"upsert"`` or ``"insert"`` (append).
            overwrite: Must be False (Hopsworks drops all rows first; with fti, delete them with
                :meth:`delete_records` or create a new version).
            storage: Must be None: fti writes the offline table and then the online store, which
                is always derived from it.
            write_options: Accepted for Hopsworks compatibility (``wait_for_job``,
                ``start_offline_materialization``, ...): fti commits within the call.
            validation_options: Hopsworks': ``{"run_validation": False}`` is ``validation="none"``.
            wait: Accepted for Hopsworks compatibility: the insert is done when this returns.

        Returns:
            The new offline commit version, the row count and the validation outcome.

        Raises:
            SchemaError: missing, extra or incompatibly typed columns; naive timestamps.
            ValidationError: empty data, null keys, duplicate keys within the insert, options
                fti does not support.
            ExpectationError: an expectation failed under ``validation="strict"``.
        """
        from fti import _progress
        from fti.features import ingestion

        validation, write_mode = ingestion.insert_options(
            validation, write_mode, operation, overwrite, storage, write_options, validation_options, wait
        )
        if type(df).__module__.startswith("pyspark."):  # the executors check and write it
            from fti.spark import ingest

            return ingest.insert(
                self,
                df,
                validation,
                write_mode=write_mode,
                statistics=statistics,
                set_features=self._fix_schema,
            )
        with _progress.task(f"{self.name}: checking the data", total=2, unit="steps") as bar:
            table, new_schema = ingestion.prepare(self, df)
            status, report = ingestion.run_validation(self, table, validation)
            bar.step(f"{self.name}: committing {table.num_rows:,} rows")
            result = commit.insert(
                self, table, status, report, merge=write_mode == "upsert", with_statistics=statistics
            )
            bar.advance()
        if new_schema is not None:  # fixed by the first commit that succeeded, not by an attempt
            self._fix_schema(new_schema)
        return result

    def insert_stream(
        self,
        batches: Iterable[Any],
        validation: str = "strict",
        *,
        write_mode: str = "append",
        unique_keys: bool = False,
        commit_metadata: Mapping[str, str] | None = None,
    ) -> InsertResult:
        """Commit a stream of pieces (pyarrow Tables or RecordBatches, pandas or polars
        DataFrames) as one offline commit, holding about one piece in memory at a time.

        Each piece is checked like an :meth:`insert` (schema, null keys, duplicate keys within
        the piece, the expectation suite) just before it is written; a piece that fails, or an
        exception raised by ``batches``, aborts the whole commit: nothing becomes visible.
        Duplicate (key, event time) values across pieces are not detected: with
        ``write_mode="append"`` the caller guarantees they never repeat, as for append-only
        data such as predictions keyed by their input rows. Statistics are computed on demand
        (``statistics(version)``); an online-enabled group is materialized after the commit.

        Args:
            batches: The pieces, all with the group's columns (the first one fixes the schema
                of a new group).
            validation: ``"strict"`` or ``"none"`` (``"warn"`` needs the whole data at once;
                use :meth:`insert`).
            write_mode: ``"append"`` (default) or ``"upsert"`` (a Delta merge on the primary key
                and event time, which reads the stored table).
            unique_keys: True when the caller guarantees that no (primary key, event time) value
                repeats within a piece either, as for rows keyed by the rows of a feature group
                (batch predictions): the per-piece duplicate check is skipped. Schema, null-key
                and expectation checks still run.
            commit_metadata: Strings stored with the offline commit, atomically with it (the
                offline store's ``history`` returns them): e.g. a token that tells a writer
                replaying its work after a crash which of its batches were committed.

        Raises:
            ValidationError: an empty stream, or the errors of :meth:`insert` for a piece.
            SchemaError: a piece does not match the schema.
            ExpectationError: a piece failed the expectation suite.
        """
        if write_mode not in ("upsert", "append"):
            raise ValidationError(f"write_mode must be 'upsert' or 'append', got {write_mode!r}")
        if validation not in ("strict", "none"):
            raise ValidationError(
                f"insert_stream validation must be 'strict' or 'none', got {validation!r} "
                "(for 'warn', insert the data at once with insert())"
            )
        if not isinstance(unique_keys, bool):
            raise ValidationError(f"unique_keys must be True or False, got {unique_keys!r}")
        extra = dict(commit_metadata or {})
        reserved = {"operation", "validation"} & set(extra)
        if reserved or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
            raise ValidationError(
                "commit_metadata must map strings to strings, without the keys 'operation' and "
                f"'validation' (fti's own), got {commit_metadata!r}"
            )
        from fti.features import ingestion

        pieces = iter(batches)
        first = next(pieces, None)
        if first is None:
            raise ValidationError(f"cannot insert an empty stream into feature group {self.name!r}")
        table, new_schema = ingestion.prepare(self, first, check_unique=not unique_keys)
        status, _ = ingestion.run_validation(self, table, validation)
        if new_schema is not None:  # the later pieces must match the first one's schema
            self._meta = replace(self._meta, features=new_schema)
        from fti import _progress

        with commit.writing(self):
            try:
                with _progress.task(f"{self.name}: writing a stream of pieces"):
                    merge = write_mode == "upsert"
                    version, rows = commit.write_stream(
                        self, table, pieces, validation, merge=merge, unique_keys=unique_keys, metadata=extra
                    )
            except BaseException:
                if new_schema is not None:  # nothing was committed: the group has no schema yet
                    self._meta = replace(self._meta, features=None)
                raise
            if new_schema is not None:
                self._fix_schema(new_schema)
            commit.record(self, version, "insert", rows, status, None)
        online_rows = self.materialize() if self.online_enabled else 0
        return InsertResult(version=version, rows=rows, validation=status, online_rows=online_rows)

    def append_features(self, features: Sequence[Feature]) -> int:
        """Add nullable features to the schema; existing rows read them as null.

        Returns the offline commit version of the schema change.
        """
        external.refuse(self, "append features (create a new version with them)")
        if not features or not all(isinstance(f, Feature) for f in features):
            raise ValidationError("append_features takes a non-empty list of fti.Feature(name, dtype)")
        if self.features is None:
            raise SchemaError(f"feature group {self.name!r} has no schema yet; insert data first")
        existing = {f.name for f in self.features}
        clashes = [f.name for f in features if f.name in existing]
        if clashes:
            raise SchemaError(f"feature(s) {clashes} already exist in {self.name!r}")
        import pyarrow as pa

        with commit.writing(self):
            version = self._project.backends.offline.add_columns(
                self.table_name, [pa.field(f.name, arrow_type(f.dtype)) for f in features]
            )
            self._set_features([*self.features, *features])
            commit.record(self, version, "append_features", 0, "none", None)
        return version

    def update_description(self, description: str) -> None:
        """Replace the group's description."""
        if not isinstance(description, str):
            raise ValidationError(f"description must be a string, got {description!r}")
        records.set_description(self._project.backends.catalog, self.id, description)
        self._meta = replace(self._meta, description=description)

    def _set_features(self, features: list[Feature] | None) -> None:
        records.set_features(self._project.backends.catalog, self.id, features)
        self._meta = replace(self._meta, features=features)

    def _fix_schema(self, features: list[Feature]) -> None:
        """Store the schema the first commit fixed (kept if a concurrent first writer stored it)."""
        catalog = self._project.backends.catalog
        records.set_features(catalog, self.id, features, only_if_unset=True)
        stored = records.find_feature_group(catalog, self._project.id, self.name, self.version)
        self._meta = replace(self._meta, features=features if stored is None else stored.features)

    def materialize(self) -> int:
        """Bring the online store up to the latest offline commit; returns rows written.

        Runs automatically at the next insert, and on connect when the catalog shows the group
        behind (:mod:`fti.features.recovery`). Idempotent.
        """
        return commit.materialize(self)

    def reconcile(self) -> int:
        """Record offline commits that the catalog is missing; returns how many were recorded.

        A writer killed between its offline commit and the catalog record leaves such a hole in
        :meth:`commits` (and in the rows ``on_new_data`` triggers count). Runs on connect (for a
        group whose write a writer left entered), at every insert and before :meth:`commits`;
        cheap when nothing is missing.
        """
        added = commit.reconcile(self)
        if self.features is None:  # the writer of the first commit died before storing the schema
            schema = self._project.backends.offline.schema(self.table_name)
            if schema is not None:
                self._fix_schema([Feature(f.name, dtype_of(f.type) or "string") for f in schema])
        return added

    def delete(self, *, force: bool = False) -> None:
        """Delete the group: its online rows, its offline table (all history), its tags and its
        metadata.

        Args:
            force: Also delete the feature views that read this group (and their training
                datasets). Without it, a group that a view reads is not deleted.

        Raises:
            ConflictError: feature views read the group and ``force`` is False.
        """
        if not isinstance(force, bool):
            raise ValidationError(f"force must be True or False, got {force!r}")
        backends = self._project.backends
        views = [
            v
            for v in records.list_feature_views(backends.catalog, self._project.id)
            if any((p.get("group"), p.get("version")) == (self.name, self.version) for p in v.query["parts"])
        ]
        if views and not force:
            names = ", ".join(f"{v.name} version {v.version}" for v in views)
            raise ConflictError(
                f"feature group {self.name!r} version {self.version} is used by feature view(s) "
                f"{names}; delete them first (fv.delete()) or delete the group with force=True, "
                "which deletes them too"
            )
        from fti import tags
        from fti.features.feature_view import FeatureView

        for meta in views:
            FeatureView(self._project, meta).delete()
        tags.forget(self._project, "feature_group", self.id)  # first: a catalog id may be reused
        if self.online_enabled:
            backends.online.delete_table(self.table_name)
        if self.embedding_index_record is not None:
            backends.vectors.drop(self.table_name)
        backends.offline.delete(self.table_name)
        records.delete_feature_group(backends.catalog, self.id)

    # --- history and statistics ---------------------------------------------------------
    def commits(self) -> list[CommitInfo]:
        """The commit history, oldest first: version, time, rows inserted, validation outcome."""
        try:
            self.reconcile()
        except BackendError as exc:  # the catalog's history is still worth showing
            log.warning("commits of feature group %r not reconciled: %s", self.name, exc)
        return records.list_commits(self._project.backends.catalog, self.id)

    def latest_commit_version(self) -> int | None:
        return self._project.backends.offline.version(self.table_name)

    def statistics(self, version: int | None = None) -> dict[str, dict[str, Any]]:
        """Statistics per column as of commit ``version`` (None = latest)."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
            raise ValidationError(f"statistics version must be a commit version >= 0, got {version!r}")
        if self.is_external:  # computed from what the source holds now
            return external.statistics(self, version)
        self.reconcile()
        found = records.commit_statistics(self._project.backends.catalog, self.id, version)
        if found is None:
            raise NotFoundError(
                f"feature group {self.name!r} has no commit"
                + (f" with version {version}" if version is not None else " yet; insert data first")
            )
        delta_version, stored = found
        if stored is not None:
            return stored
        from fti.features.statistics import compute_statistics  # computed on demand (not stored)

        return compute_statistics(
            self._project.backends.offline.dataset(self.table_name, version=delta_version)
        )

    def online_lookup(self, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
        """The latest row for each key, in request order; ``None`` where the key has no row.

        Args:
            keys: One mapping per entity holding every primary-key column.
        """
        if not self._meta.online_enabled:
            raise ValidationError(
                f"feature group {self.name!r} is not online-enabled; create it with online_enabled=True"
            )
        return self._project.backends.online.read(self.table_name, self._key_tuples(keys))

    def _key_tuples(self, keys: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        if isinstance(keys, Mapping) or not isinstance(keys, Sequence) or isinstance(keys, str):
            raise ValidationError("keys must be a list of mappings, e.g. [{'cc_num': 1}]")
        pk = self._meta.primary_key
        if len(pk) == 1:  # the common case, kept lean: it is on the online hot path
            name = pk[0]
            try:
                return [(_plain(entry[name]),) for entry in keys]
            except (KeyError, TypeError):
                pass  # fall through to the loop below for a precise error
        out: list[tuple[Any, ...]] = []
        for entry in keys:
            try:
                out.append(tuple([_plain(entry[k]) for k in pk]))
            except KeyError:
                missing = [k for k in pk if k not in entry]
                raise ValidationError(
                    f"lookup key {dict(entry)!r} is missing primary-key column(s) {missing} of {self.name!r}"
                ) from None
            except TypeError:
                raise ValidationError(f"each lookup key must be a mapping, got {entry!r}") from None
        return out


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so every backend can bind them."""
    if type(value) in (int, str, float):
        return value
    item = getattr(value, "item", None)
    return item() if item is not None else value
