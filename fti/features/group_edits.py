"""Changing a feature group besides inserting: deleting rows by key (``delete_records``) and
describing features (``update_feature_description``), with Hopsworks' names.

Mixed into :class:`~fti.features.feature_group.FeatureGroup`. A delete is one offline commit
(recorded in ``fg.commits()`` as ``delete_records``), after which the online store is rebuilt
from the offline table, so the deleted keys' online rows go too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fti.errors import SchemaError, ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features._project import FeatureProject
    from fti.features.records import FeatureGroupMeta
    from fti.types import Feature


class GroupEdits:
    """Row deletes and feature descriptions of one feature group (see the module docs)."""

    if TYPE_CHECKING:
        _project: FeatureProject
        _meta: FeatureGroupMeta

        @property
        def id(self) -> int: ...

        @property
        def name(self) -> str: ...

        @property
        def primary_key(self) -> list[str]: ...

        @property
        def event_time(self) -> str | None: ...

        @property
        def online_enabled(self) -> bool: ...

        @property
        def table_name(self) -> str: ...

        @property
        def features(self) -> list[Feature] | None: ...

        def latest_commit_version(self) -> int | None: ...

    def update_feature_description(self, feature_name: str, description: str) -> GroupEdits:
        """Describe the feature ``feature_name`` (shown by ``fti fg show`` and the UI); returns the
        group, as Hopsworks does.

        Raises:
            SchemaError: the group has no such feature (or no schema yet).
        """
        if not isinstance(description, str):
            raise ValidationError(f"description must be a string, got {description!r}")
        features = self.features
        if features is None:
            raise SchemaError(
                f"feature group {self.name!r} has no schema yet; insert data or declare features first"
            )
        names = [f.name for f in features]
        if feature_name not in names:
            raise SchemaError(f"feature group {self.name!r} has no feature {feature_name!r}; it has {names}")
        from fti.features import records

        updated = [replace(f, description=description) if f.name == feature_name else f for f in features]
        records.set_features(self._project.backends.catalog, self.id, updated)
        self._meta = replace(self._meta, features=updated)
        return self

    def delete_records(self, keys: Any) -> int:
        """Delete the rows of the given keys (Hopsworks' ``commit_delete_record``/``remove_rows``).

        Args:
            keys: A DataFrame (or Arrow table, or list of dicts) with the primary-key columns:
                every row of those keys is deleted; with the event-time column too, only the rows
                with that (key, event time). Other columns are ignored, so the rows read from the
                group can be passed as they are.

        Returns:
            How many rows were deleted (0 when no key matched; the commit is still recorded).

        Raises:
            SchemaError: a key column is missing or has another type.
            ValidationError: no keys, or null keys.
        """
        from fti.features import external

        external.refuse(self, "delete records")  # type: ignore[arg-type]  # a FeatureGroup
        from fti.features import commit

        table = self._delete_keys(keys)
        if self.latest_commit_version() is None:
            return 0
        offline = self._project.backends.offline
        before = int(offline.dataset(self.table_name).count_rows())
        with commit.writing(self):  # type: ignore[arg-type]  # a FeatureGroup
            version = offline.delete_rows(self.table_name, table, metadata={"operation": commit.DELETE})
            deleted = before - int(offline.dataset(self.table_name, version=version).count_rows())
            commit.record(self, version, commit.DELETE, deleted, "none", None)  # type: ignore[arg-type]
        if self.online_enabled:
            commit.materialize(self)  # type: ignore[arg-type]  # rebuilds: the commit deleted rows
        return deleted

    def commit_delete_record(self, delete_df: Any, write_options: Mapping[str, Any] | None = None) -> int:
        """Hopsworks' older name of :meth:`delete_records`."""
        return self.delete_records(delete_df)

    def _delete_keys(self, keys: Any) -> pa.Table:
        """``keys`` as an Arrow table of the key columns (with the event time if given), in the
        stored types, without duplicates."""
        import pyarrow as pa

        from fti.features import ingestion
        from fti.features._frames import cast_exactly, to_arrow
        from fti.types import arrow_type

        if (
            isinstance(keys, Sequence)
            and not isinstance(keys, (str, bytes))
            and all(isinstance(k, Mapping) for k in keys)
        ):
            keys = pa.Table.from_pylist([dict(k) for k in keys])
        table = to_arrow(keys, what=f"keys to delete from feature group {self.name!r}")
        if table.num_rows == 0:
            raise ValidationError(f"no keys to delete from feature group {self.name!r}")
        table = ingestion.lower_case(self, table)  # type: ignore[arg-type]
        missing = [k for k in self.primary_key if k not in table.column_names]
        if missing:
            raise SchemaError(
                f"the keys to delete from {self.name!r} lack primary-key column(s) {missing} "
                f"(columns given: {table.column_names})"
            )
        columns = list(self.primary_key)
        if self.event_time and self.event_time in table.column_names:
            table = ingestion.epoch_event_times(self, table)  # type: ignore[arg-type]
            columns.append(self.event_time)
        dtypes = {f.name: f.dtype for f in self.features or []}
        arrays = []
        for name in columns:
            column = table.column(name)
            if column.null_count:
                raise ValidationError(f"key column {name!r} of the keys to delete has null values")
            if name in dtypes:
                try:
                    column = cast_exactly(column, arrow_type(dtypes[name]), name)
                except SchemaError as exc:
                    raise SchemaError(f"the keys to delete from {self.name!r}: {exc.message}") from exc
            arrays.append(column)
        return pa.table(arrays, names=columns).group_by(columns).aggregate([]).select(columns)
