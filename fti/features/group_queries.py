"""Reading a feature group: ``read`` (time travel by commit or time), ``read_page``, ``show(n)``,
queries for feature views (``select``, ``select_all``, ``select_except``, ``filter``) and feature
handles for filters (``fg.amount``, ``fg["amount"]``, ``fg.get_feature("amount")``), with
Hopsworks' names and defaults alongside fti's own.

Mixed into :class:`~fti.features.feature_group.FeatureGroup`; the queries are
:class:`~fti.features.query.Query` and the filters :mod:`fti.features.filters`. Rows come in the
order they were written, the oldest commit first (a row an upsert rewrote moves with its new file).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, SchemaError, ValidationError
from fti.types import arrow_type

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fti.features._project import FeatureProject
    from fti.features.filters import Condition, FeatureColumn
    from fti.features.query import Query
    from fti.paging import Page
    from fti.types import Feature


class GroupQueries:
    """Reads and queries of one feature group (see the module docs)."""

    if TYPE_CHECKING:
        _project: FeatureProject

        @property
        def name(self) -> str: ...

        @property
        def version(self) -> int: ...

        @property
        def table_name(self) -> str: ...

        @property
        def features(self) -> list[Feature] | None: ...

        def latest_commit_version(self) -> int | None: ...

        @property
        def is_external(self) -> bool: ...

    # --- reading --------------------------------------------------------------------------
    def _dataset(self, as_of: int | datetime | None) -> ds.Dataset | None:
        if self.is_external:  # read from its source now (no history to travel in)
            from fti.features import external

            return external.dataset(self, as_of)  # type: ignore[arg-type]  # a FeatureGroup
        if isinstance(as_of, datetime) and as_of.tzinfo is None:
            raise ValidationError("as_of must be a tz-aware datetime, e.g. datetime(..., tzinfo=UTC)")
        if (as_of is not None and not isinstance(as_of, (int, datetime))) or isinstance(as_of, bool):
            raise ValidationError(f"as_of must be a commit version (int) or a datetime, got {as_of!r}")
        try:
            return self._project.backends.offline.dataset(self.table_name, version=as_of)
        except NotFoundError as exc:
            if as_of is None and self.latest_commit_version() is None:
                return None
            what = f"feature group {self.name!r} version {self.version}"
            if "latest" in exc.details:
                raise NotFoundError(
                    f"{what} has no commit {as_of}: its commits are 0 to {exc.details['latest']} "
                    f"(see fg.commits() or `fti fg show {self.name}`)"
                ) from exc
            if "first_commit_at" in exc.details:
                assert isinstance(as_of, datetime)
                raise NotFoundError(
                    f"{what} has no commit at or before {as_of.isoformat()}: its first commit was at "
                    f"{exc.details['first_commit_at']}"
                ) from exc
            if self.latest_commit_version() is None:
                raise NotFoundError(f"{what} has no commit yet; insert data first") from exc
            raise

    def read_arrow(
        self,
        as_of: int | datetime | None = None,
        columns: Sequence[str] | None = None,
        *,
        limit: int | None = None,
    ) -> pa.Table:
        """The group's rows at ``as_of`` (a commit version or a time; None = latest) as Arrow,
        the first ``limit`` of them when given (reading only the files they are in)."""
        import pyarrow as pa

        cols = self._check_columns(columns)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValidationError(f"limit must be a number of rows >= 0, got {limit!r}")
        dataset = self._dataset(as_of)
        if dataset is None:
            schema = pa.schema([pa.field(f.name, arrow_type(f.dtype)) for f in self.features or []])
            empty = schema.empty_table()
            return empty.select(cols) if cols else empty
        from fti.features.embeddings import restore_vectors

        try:
            table = dataset.head(limit, columns=cols) if limit is not None else dataset.to_table(columns=cols)
        except FileNotFoundError as exc:
            if as_of is None:
                raise
            raise NotFoundError(
                f"version {as_of!r} of feature group {self.name!r} can no longer be read: its files "
                "were deleted by vacuum() (beyond the retention); read a newer version"
            ) from exc
        return restore_vectors(table, self.features)

    def read(
        self,
        as_of: int | datetime | None = None,
        columns: Sequence[str] | None = None,
        *,
        online: bool = False,
        dataframe_type: str = "default",
        read_options: dict[str, Any] | None = None,
        wallclock_time: int | datetime | None = None,
    ) -> Any:
        """The group's rows at ``as_of`` as a pandas DataFrame (Hopsworks: ``dataframe_type``
        ``"polars"``, ``"pyarrow"``, ``"numpy"``, ``"python"``; ``wallclock_time`` is ``as_of``).

        Raises:
            ValidationError: ``online=True`` (online values are read per key: :meth:`online_lookup`),
                both ``as_of`` and ``wallclock_time``, an unknown ``dataframe_type``.
        """
        from fti.features.batch_data import DATAFRAME_TYPES, convert

        if online is not False:
            raise ValidationError(
                f"fg.read(online=True) is not supported: the online store is read per key, with "
                f"fg.online_lookup([{{...}}]) for {self.name!r}; fg.read() reads the offline table"
            )
        if wallclock_time is not None:
            if as_of is not None:
                raise ValidationError("pass either as_of or wallclock_time (the same thing), not both")
            as_of = wallclock_time
        if dataframe_type not in DATAFRAME_TYPES:
            raise ValidationError(f"dataframe_type must be one of {DATAFRAME_TYPES}, got {dataframe_type!r}")
        if read_options is not None and not isinstance(read_options, dict):
            raise ValidationError(f"read_options must be a dict, got {read_options!r}")
        return convert(self.read_arrow(as_of, columns), dataframe_type)

    def read_polars(
        self, as_of: int | datetime | None = None, columns: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """The group's rows at ``as_of`` as a polars DataFrame."""
        import polars as pl

        return pl.from_arrow(self.read_arrow(as_of, columns))  # type: ignore[return-value]

    def show(self, n: int, online: bool = False) -> pd.DataFrame:
        """The first ``n`` rows of the group (latest commit, in the order they were written) as a
        pandas DataFrame; reads only the data files those rows are in."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValidationError(f"show() takes a number of rows >= 0, got {n!r}")
        if online is not False:
            self.read(online=online)  # raises: online values are read per key
        frame: pd.DataFrame = self.read_arrow(limit=n).to_pandas()
        return frame

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

    # --- queries (for feature views) -------------------------------------------------------
    def select(self, features: Sequence[str]) -> Query:
        """A query of ``features`` of this group (any columns, in order); see :class:`Query`."""
        from fti.features.query import Query

        return Query.select(self, features)  # type: ignore[arg-type]  # mixed into FeatureGroup

    def select_all(self, include_primary_key: bool = True, include_event_time: bool = True) -> Query:
        """A query of every feature of the group, its primary-key and event-time columns included
        unless ``include_primary_key`` / ``include_event_time`` is False (Hopsworks' defaults)."""
        from fti.features.query import Query

        return Query.select_all(self, include_primary_key, include_event_time)  # type: ignore[arg-type]

    def select_except(self, features: Sequence[str] = ()) -> Query:
        """Every feature of the group except ``features`` (key and event-time columns included)."""
        from fti.features.query import Query

        return Query.select_except(self, list(features))  # type: ignore[arg-type]

    def filter(self, condition: Condition) -> Query:
        """``select_all().filter(condition)``: the group's rows matching ``condition``, e.g.
        ``fg.filter(fg.amount > 10).read()``."""
        return self.select_all().filter(condition)

    # --- feature handles (for filters) ------------------------------------------------------
    def get_feature(self, name: str) -> FeatureColumn:
        """The feature ``name`` as a handle for filters (``fg.get_feature("amount") > 10``).

        Raises:
            SchemaError: the group has no such feature (or no schema yet).
        """
        from fti.features.filters import FeatureColumn

        if not isinstance(name, str):
            raise ValidationError(f"a feature name is a string, got {name!r}")
        features = self.features
        if features is None:
            raise SchemaError(
                f"feature group {self.name!r} has no schema yet; insert data or declare features first"
            )
        for feature in features:
            if feature.name == name:
                return FeatureColumn(self, feature.name, feature.dtype)  # type: ignore[arg-type]
        raise SchemaError(
            f"feature group {self.name!r} has no feature {name!r}; it has {[f.name for f in features]}"
        )

    def __getitem__(self, name: str) -> FeatureColumn:
        return self.get_feature(name)

    if not TYPE_CHECKING:  # at runtime only: mypy keeps checking attribute names

        def __getattr__(self, name: str) -> FeatureColumn:
            # Reached only for names that are no attribute: a feature as an attribute (fg.amount).
            if name.startswith("_") or "_meta" not in self.__dict__:
                raise AttributeError(name)
            features = self.features or []
            if any(f.name == name for f in features):
                return self.get_feature(name)
            known = f"; its features are {[f.name for f in features]}" if features else ""
            raise AttributeError(
                f"{type(self).__name__} {self.name!r} has no attribute or feature {name!r}{known}"
            )
