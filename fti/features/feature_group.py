"""Feature groups: versioned tables of features with a primary key and optional event time.

A :class:`FeatureGroup` owns its behaviour: inserts (checked by :mod:`fti.features.ingestion`,
committed by :mod:`fti.features.commit`), schema changes, materialization, deletion, history,
statistics, reads and online lookups. Its catalog record is read and written through
:mod:`fti.features.records`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, SchemaError, ValidationError
from fti.features import commit, records
from fti.features.ingestion import InsertResult
from fti.features.records import CommitInfo, FeatureGroupMeta
from fti.types import Feature, arrow_type

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fti.features._project import FeatureProject
    from fti.features.query import Query
    from fti.paging import Page

__all__ = ["CommitInfo", "FeatureGroup", "FeatureGroupMeta", "InsertResult"]


class FeatureGroup:
    """A feature group. Obtain one from ``project.feature_store``.

    Offline, every insert is one Delta Lake commit (time travel by version or timestamp). Online
    (when ``online_enabled``), the latest row per primary key is kept for low-latency lookups.
    """

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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for ``fti fg show --json`` and the UI)."""
        return {
            "name": self.name,
            "version": self.version,
            "primary_key": self.primary_key,
            "event_time": self.event_time,
            "online_enabled": self.online_enabled,
            "description": self.description,
            "features": None if self.features is None else [f.to_dict() for f in self.features],
            "expectation_suite": self.expectation_suite,
            "created_at": self._meta.created_at.isoformat(),
            "latest_version": self.latest_commit_version(),
        }

    # --- tags -----------------------------------------------------------------------------
    def add_tag(self, tag: str) -> None:
        """Tag this feature group version (e.g. ``"pii"``); see :mod:`fti.tags`."""
        from fti import tags

        tags.add(self._project, "feature_group", self.id, tag)

    def remove_tag(self, tag: str) -> None:
        """Remove a tag; NotFoundError when the group does not have it."""
        from fti import tags

        tags.remove(self._project, "feature_group", self.id, tag, what=f"feature group {self.name!r}")

    @property
    def tags(self) -> list[str]:
        """This version's tags, sorted."""
        from fti import tags

        return tags.tags_of(self._project, "feature_group", self.id)

    # --- writing --------------------------------------------------------------------------
    def insert(
        self, df: Any, validation: str = "strict", *, write_mode: str = "upsert", statistics: bool = True
    ) -> InsertResult:
        """Validate ``df`` and commit it.

        Args:
            df: A pandas or polars DataFrame or a pyarrow Table with every feature of the group,
                or a Spark DataFrame (checked, written and committed by the Spark executors; see
                :mod:`fti.spark.ingest`).
            validation: ``"strict"`` rejects the whole insert when an expectation fails;
                ``"warn"`` inserts and stores the report; ``"none"`` skips the suite.
            write_mode: ``"upsert"`` (default) replaces stored rows with the same primary key and
                event time, so re-running a pipeline is idempotent; ``"append"`` skips that
                check for append-only data whose (key, event time) never repeats, such as logs,
                so a commit costs in proportion to the insert rather than to the table.
            statistics: Compute the table's statistics at this commit (a full scan). With False,
                ``statistics(version)`` computes them on demand.

        Returns:
            The new offline commit version, the row count and the validation outcome.

        Raises:
            SchemaError: missing, extra or incompatibly typed columns; naive timestamps.
            ValidationError: empty data, null keys, duplicate keys within the insert.
            ExpectationError: an expectation failed under ``validation="strict"``.
        """
        from fti.features import ingestion

        if write_mode not in ("upsert", "append"):
            raise ValidationError(f"write_mode must be 'upsert' or 'append', got {write_mode!r}")
        if type(df).__module__.startswith("pyspark."):  # the executors check and write it
            from fti.spark import ingest

            return ingest.insert(
                self,
                df,
                validation,
                write_mode=write_mode,
                statistics=statistics,
                set_features=self._set_features,
            )
        table, new_schema = ingestion.prepare(self, df)
        status, report = ingestion.run_validation(self, table, validation)
        if new_schema is not None:
            self._set_features(new_schema)
        return commit.insert(
            self, table, status, report, merge=write_mode == "upsert", with_statistics=statistics
        )

    def insert_stream(
        self,
        batches: Iterable[Any],
        validation: str = "strict",
        *,
        write_mode: str = "append",
        unique_keys: bool = False,
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
        from fti.features import ingestion

        pieces = iter(batches)
        first = next(pieces, None)
        if first is None:
            raise ValidationError(f"cannot insert an empty stream into feature group {self.name!r}")
        table, new_schema = ingestion.prepare(self, first, check_unique=not unique_keys)
        status, _ = ingestion.run_validation(self, table, validation)
        if new_schema is not None:
            self._set_features(new_schema)
        try:
            version, rows = commit.write_stream(
                self, table, pieces, validation, merge=write_mode == "upsert", unique_keys=unique_keys
            )
        except Exception:
            if new_schema is not None:  # nothing was committed: the group has no schema yet
                self._set_features(None)
            raise
        commit.record(self, version, "insert", rows, status, None)
        online_rows = self.materialize() if self.online_enabled else 0
        return InsertResult(version=version, rows=rows, validation=status, online_rows=online_rows)

    def append_features(self, features: Sequence[Feature]) -> int:
        """Add nullable features to the schema; existing rows read them as null.

        Returns the offline commit version of the schema change.
        """
        if not features or not all(isinstance(f, Feature) for f in features):
            raise ValidationError("append_features takes a non-empty list of fti.Feature(name, dtype)")
        if self.features is None:
            raise SchemaError(f"feature group {self.name!r} has no schema yet; insert data first")
        existing = {f.name for f in self.features}
        clashes = [f.name for f in features if f.name in existing]
        if clashes:
            raise SchemaError(f"feature(s) {clashes} already exist in {self.name!r}")
        import pyarrow as pa

        version = self._project.backends.offline.add_columns(
            self.table_name, [pa.field(f.name, arrow_type(f.dtype)) for f in features]
        )
        self._set_features([*self.features, *features])
        commit.record(self, version, "append_features", 0, "none", None)
        return version

    def _set_features(self, features: list[Feature] | None) -> None:
        records.set_features(self._project.backends.catalog, self.id, features)
        self._meta = replace(self._meta, features=features)

    def materialize(self) -> int:
        """Bring the online store up to the latest offline commit; returns rows written.

        Runs automatically at the next insert and on connect. Idempotent.
        """
        return commit.materialize(self)

    def delete(self) -> None:
        """Delete the group: its online rows, its offline table (all history), its tags and its metadata."""
        from fti import tags

        tags.forget(self._project, "feature_group", self.id)  # first: a catalog id may be reused
        backends = self._project.backends
        if self.online_enabled:
            backends.online.delete_table(self.table_name)
        backends.offline.delete(self.table_name)
        records.delete_feature_group(backends.catalog, self.id)

    # --- queries (for feature views) -------------------------------------------------------
    def select(self, features: Sequence[str]) -> Query:
        """A query of ``features`` of this group (any columns, in order); see :class:`Query`."""
        from fti.features.query import Query

        return Query.select(self, features)

    def select_all(self) -> Query:
        """A query of every feature except the primary-key and event-time columns."""
        from fti.features.query import Query

        return Query.select_all(self)

    def select_except(self, features: Sequence[str]) -> Query:
        """Like :meth:`select_all`, without ``features``."""
        from fti.features.query import Query

        return Query.select_except(self, features)

    # --- reading --------------------------------------------------------------------------
    def _dataset(self, as_of: int | datetime | None) -> ds.Dataset | None:
        if isinstance(as_of, datetime) and as_of.tzinfo is None:
            raise ValidationError("as_of must be a tz-aware datetime, e.g. datetime(..., tzinfo=UTC)")
        if (as_of is not None and not isinstance(as_of, (int, datetime))) or isinstance(as_of, bool):
            raise ValidationError(f"as_of must be a commit version (int) or a datetime, got {as_of!r}")
        try:
            return self._project.backends.offline.dataset(self.table_name, version=as_of)
        except NotFoundError:
            if as_of is None and self.latest_commit_version() is None:
                return None
            raise

    def read_arrow(
        self, as_of: int | datetime | None = None, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """The group's rows at ``as_of`` (a commit version or a time; None = latest) as Arrow."""
        import pyarrow as pa

        cols = self._check_columns(columns)
        dataset = self._dataset(as_of)
        if dataset is None:
            schema = pa.schema([pa.field(f.name, arrow_type(f.dtype)) for f in self.features or []])
            empty = schema.empty_table()
            return empty.select(cols) if cols else empty
        return dataset.to_table(columns=cols)

    def read(self, as_of: int | datetime | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The group's rows at ``as_of`` as a pandas DataFrame."""
        frame: pd.DataFrame = self.read_arrow(as_of, columns).to_pandas()
        return frame

    def read_polars(
        self, as_of: int | datetime | None = None, columns: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """The group's rows at ``as_of`` as a polars DataFrame."""
        import polars as pl

        return pl.from_arrow(self.read_arrow(as_of, columns))  # type: ignore[return-value]

    def read_page(
        self, offset: int = 0, limit: int = 50, as_of: int | datetime | None = None
    ) -> Page[dict[str, Any]]:
        """Rows ``offset`` to ``offset + limit`` at ``as_of`` (in storage order) as dicts, and the
        row count; reads only the files those rows are in (for browsing large groups)."""
        from fti.paging import Page, check_page

        offset, limit = check_page(offset, limit)
        dataset = self._dataset(as_of)
        if dataset is None:
            return Page([], 0, offset, limit)
        total = int(dataset.count_rows())  # from the Parquet footers
        rows = dataset.head(offset + limit).slice(offset).to_pylist() if limit and offset < total else []
        return Page(rows, total, offset, limit)

    def _check_columns(self, columns: Sequence[str] | None) -> list[str] | None:
        if columns is None:
            return None
        if isinstance(columns, str):
            raise ValidationError("columns must be a list of names, not a string")
        known = [f.name for f in self.features or []]
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise SchemaError(f"unknown column(s) {unknown} in feature group {self.name!r}; it has {known}")
        return list(columns)

    def commits(self) -> list[CommitInfo]:
        """The commit history, oldest first: version, time, rows inserted, validation outcome."""
        return records.list_commits(self._project.backends.catalog, self.id)

    def latest_commit_version(self) -> int | None:
        return self._project.backends.offline.version(self.table_name)

    def statistics(self, version: int | None = None) -> dict[str, dict[str, Any]]:
        """Statistics per column as of commit ``version`` (None = latest)."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
            raise ValidationError(f"statistics version must be a commit version >= 0, got {version!r}")
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
