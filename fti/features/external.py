"""External feature groups: a data source and a query, read at query time (offline only).

``fs.get_or_create_external_feature_group("orders", source=fti.sources.SQL(...), query="SELECT
..."), primary_key=[...], event_time="ts")`` stores the source (its URL and the name of its
secret, never a password), the query and its parameters in the catalog. The group has no offline
table and no online rows: every read runs the query (through the source, so with its secret), and
the rows are cast to the group's schema, which is fixed when the group is created (declared, or
read from the query's first rows). Feature views join it like any group, point-in-time correctly;
a training dataset materializes the rows it read, so it stays reproducible whatever the source
holds later.

For a :class:`~fti.sources.Files` source the query is optional DuckDB SQL over the files' rows,
registered as the table ``source`` (``SELECT user_id, ts, count(*) ... FROM source GROUP BY ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from fti.errors import SchemaError, ValidationError
from fti.features._frames import cast_exactly, normalize
from fti.types import Feature, arrow_type, dtype_of

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fti.features._project import FeatureProject
    from fti.features.feature_group import FeatureGroup
    from fti.features.records import FeatureGroupMeta

SAMPLE_ROWS = 100


def define(source: Any, query: str | None, params: dict[str, Any] | None) -> dict[str, Any]:
    """The catalog form of an external group's source, query and parameters (checked)."""
    from fti.sources.files import Files
    from fti.sources.sql import SQL

    if not isinstance(source, SQL | Files):
        raise ValidationError(
            f"source must be fti.sources.SQL(...) or fti.sources.Files(...), got {type(source).__name__}"
        )
    if isinstance(source, SQL) and (not isinstance(query, str) or not query.strip()):
        raise ValidationError("an external group on a SQL source needs query='SELECT ...'")
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise ValidationError(f"query must be SQL text, got {query!r}")
    if params is not None and (not isinstance(params, dict) or not all(isinstance(k, str) for k in params)):
        raise ValidationError(f"params must map parameter names to values, got {params!r}")
    return {"source": source.to_dict(), "query": query, "params": _encode(params or {})}


def describe(definition: dict[str, Any] | None) -> dict[str, Any] | None:
    """What ``fg.to_dict()`` shows of an external group (no credentials are stored to show)."""
    if definition is None:
        return None
    from fti.sources.base import from_dict

    return {"source": from_dict(definition["source"], None).describe(), "query": definition["query"]}


def read_source(definition: dict[str, Any], project: FeatureProject, *, limit: int | None = None) -> pa.Table:
    """The rows the query returns (at most ``limit``), as the source gives them."""
    from fti.sources.base import from_dict
    from fti.sources.files import Files
    from fti.sources.sql import SQL

    source = from_dict(definition["source"], project)  # type: ignore[arg-type]
    query, params = definition["query"], _decode(definition["params"])
    if isinstance(source, SQL):
        if limit is not None:
            query = f"SELECT * FROM ({query.strip().rstrip(';')}) AS fti_q LIMIT {int(limit)}"
        return source.read(query, **params)
    assert isinstance(source, Files)
    if limit is not None:
        first = next(iter(source.batches(chunk_rows=max(limit, 1))), None)
        table = first if first is None else _as_table(first)
    else:
        table = source.read()
    if table is None:
        raise ValidationError(f"{source!r} holds no rows to read the schema from; declare features=[...]")
    if query is None:
        return table if limit is None else table.slice(0, limit)
    from fti._duckdb import connect

    con = connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("source", table)
        sql = query if limit is None else f"SELECT * FROM ({query.strip().rstrip(';')}) LIMIT {int(limit)}"
        try:  # parameters as $name
            relation = con.sql(sql, params=params or None)
            to_table = getattr(relation, "to_arrow_table", None) or relation.arrow
            result: pa.Table = to_table()
            return result
        except Exception as exc:  # DuckDB's own error types: the query is wrong
            raise ValidationError(f"the query of the external group over {source!r} failed: {exc}") from None
    finally:
        con.close()


def infer_features(definition: dict[str, Any], project: FeatureProject, what: str) -> list[Feature]:
    """The schema of the query's first rows (raises with the fix when a type is not storable)."""
    sample = read_source(definition, project, limit=SAMPLE_ROWS)
    try:
        table = normalize(sample, what=f"the query of {what}")
    except SchemaError as exc:
        raise SchemaError(
            f"{exc.message}; return tz-aware timestamps from the query (PostgreSQL: timestamptz or "
            "ts AT TIME ZONE 'UTC') and typed values, or declare features=[fti.Feature(name, dtype)]"
        ) from None
    return [Feature(f.name, dtype_of(f.type) or "string") for f in table.schema]


def read(fg: FeatureGroup) -> pa.Table:
    """The group's rows now: the query's result in the group's columns and types."""
    import pyarrow as pa

    assert fg.features is not None and fg.definition is not None
    raw = read_source(fg.definition, fg.project)
    problems: list[str] = []
    columns: list[pa.ChunkedArray] = []
    for feature in fg.features:
        if feature.name not in raw.column_names:
            problems.append(f"column {feature.name!r} is missing")
            continue
        column = raw.column(feature.name)
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            problems.append(f"column {feature.name!r} holds naive timestamps (return timestamptz)")
            continue
        try:
            columns.append(cast_exactly(column, arrow_type(feature.dtype), feature.name))
        except SchemaError as exc:
            problems.append(exc.message)
    if problems:
        raise SchemaError(
            f"the query of external feature group {fg.name!r} no longer returns its schema: "
            + "; ".join(problems)
            + f" (the group has {[f.name for f in fg.features]}: fix the query, or create a new version)"
        )
    return pa.table(columns, names=[f.name for f in fg.features])


def dataset(fg: FeatureGroup, as_of: int | datetime | None) -> ds.Dataset:
    """The group's rows as a dataset (external groups have no history: ``as_of`` must be None)."""
    import pyarrow.dataset as ds

    if as_of is not None:
        raise ValidationError(
            f"feature group {fg.name!r} is external: it is read from its source at query time and has "
            "no history to travel in (as_of must be None)"
        )
    return ds.dataset(read(fg))


def refuse(fg: FeatureGroup, action: str) -> None:
    """Raise when ``fg`` is external: it is read from its source and stores nothing itself."""
    if fg.is_external:
        raise ValidationError(
            f"feature group {fg.name!r} is external (read from its source at query time): it cannot "
            f"{action}; change the data at the source, or use a feature group that stores rows"
        )


class External:
    """Mixed into :class:`~fti.features.feature_group.FeatureGroup`: whether it is external and
    what it reads."""

    if TYPE_CHECKING:
        _meta: FeatureGroupMeta

    @property
    def is_external(self) -> bool:
        """True for a group read from a data source at query time."""
        return self._meta.external is not None

    @property
    def definition(self) -> dict[str, Any] | None:
        """An external group's stored source, query and parameters (None for other groups)."""
        return self._meta.external

    @property
    def external(self) -> dict[str, Any] | None:
        """An external group's source (without credentials) and query; None for other groups."""
        return describe(self._meta.external)


def _as_table(batch: pa.RecordBatch) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_batches([batch])


def _encode(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValidationError(f"parameter {name!r} is a naive datetime: give it a time zone")
            out[name] = {"$datetime": value.isoformat()}
        elif isinstance(value, date):
            out[name] = {"$date": value.isoformat()}
        elif value is None or isinstance(value, bool | int | float | str):
            out[name] = value
        else:
            raise ValidationError(
                f"parameter {name!r} is a {type(value).__name__}: use a string, number, bool, date or datetime"
            )
    return out


def _decode(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict) and "$datetime" in value:
            out[name] = datetime.fromisoformat(value["$datetime"])
        elif isinstance(value, dict) and "$date" in value:
            out[name] = date.fromisoformat(value["$date"])
        else:
            out[name] = value
    return out


def statistics(fg: FeatureGroup, version: int | None) -> dict[str, dict[str, Any]]:
    """Statistics of what the source holds now (there are no commits to pin a version to)."""
    from fti.features.statistics import compute_statistics

    if version is not None:
        raise ValidationError(f"feature group {fg.name!r} is external: it has no commit versions")
    return compute_statistics(read(fg))


def get_or_create(
    project: FeatureProject,
    name: str,
    version: int,
    source: Any,
    query: str | None,
    params: Mapping[str, Any] | None,
    primary_key: Sequence[str],
    event_time: str | None,
    description: str | None,
    features: Sequence[Feature] | None,
) -> FeatureGroupMeta:
    """The catalog record of the external group ``name`` version ``version``, created when it
    does not exist (``fs.get_or_create_external_feature_group``; name and version are checked)."""
    from fti.errors import AlreadyExistsError
    from fti.features import definitions, records

    pk, event_time, declared, _ = definitions.check_group(primary_key, event_time, False, features, None)
    if description is not None and not isinstance(description, str):
        raise ValidationError(f"description must be a string, got {description!r}")
    stored_definition = define(source, query, dict(params) if params is not None else None)
    existing = records.find_feature_group(project.backends.catalog, project.id, name, version)
    if existing is not None:
        if existing.external != stored_definition:
            raise AlreadyExistsError(
                f"feature group {name!r} version {version} already exists with "
                + ("another source, query or params" if existing.external else "stored rows (not external)")
                + f"; create version {version + 1} instead"
            )
        definitions.check_unchanged(existing, pk, event_time, False, description, declared, None)
        return existing
    schema = declared or infer_features(stored_definition, project, f"feature group {name!r}")
    names = [f.name for f in schema]
    missing = [c for c in [*pk, *([event_time] if event_time else [])] if c not in names]
    if missing:
        raise SchemaError(
            f"the query of feature group {name!r} returns no column(s) {missing} (it has {names})"
        )
    if event_time and next(f for f in schema if f.name == event_time).dtype != "timestamp":
        raise SchemaError(f"event time column {event_time!r} of the query must be a tz-aware timestamp")
    values = {
        "name": name,
        "version": version,
        "primary_key": pk,
        "event_time": event_time,
        "online_enabled": False,
        "description": description or "",
        "features": [f.to_dict() for f in schema],
        "expectation_suite": None,
        "table_name": f"{project.name}__{name}__v{version}",
        "external": stored_definition,
    }
    records.insert_feature_group(project.backends.catalog, project.id, values)
    found = records.find_feature_group(project.backends.catalog, project.id, name, version)
    assert found is not None
    return found
