"""Feature group and feature view definitions: what a valid one is, checked before anything is stored.

:class:`~fti.features.feature_store.FeatureStore` calls these when it creates a group or a view,
so a rejected definition leaves nothing behind in the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fti.errors import AlreadyExistsError, SchemaError, ValidationError
from fti.features._frames import check_column_names
from fti.features.query import Query
from fti.types import Feature

if TYPE_CHECKING:
    from fti.features.records import FeatureGroupMeta

log = logging.getLogger("fti.features")


EVENT_TIME_UNITS = ("s", "ms", "us", "ns")
"""Units of integer event times: epoch seconds, milliseconds (Hopsworks'), micro- or nanoseconds."""


def check_group(
    primary_key: Sequence[str],
    event_time: str | None,
    online_enabled: bool,
    features: Sequence[Feature] | None,
    expectation_suite: Any,
    event_time_unit: str | None = None,
) -> tuple[list[str], str | None, list[Feature] | None, dict[str, Any] | None]:
    """Check a feature group's definition before anything is stored.

    Column names with upper-case letters are lower-cased, as Hopsworks does, with a note.

    Returns:
        The primary key as a list, the event-time column, the declared features (or None) and
        the expectation suite as stored in the catalog (or None).

    Raises:
        ValidationError: which argument is wrong and why.
    """
    pk = _check_primary_key(primary_key)
    if event_time is not None and (not isinstance(event_time, str) or not event_time):
        raise ValidationError(f"event_time must be a column name or None, got {event_time!r}")
    lowered = [name for name in [*pk, *([event_time] if event_time else [])] if name != name.lower()]
    if lowered:
        log.warning(
            "column name(s) %s have upper-case letters: fti lowers them, as Hopsworks does (%s)",
            lowered,
            ", ".join(name.lower() for name in lowered),
        )
        pk = [k.lower() for k in pk]
        event_time = event_time.lower() if event_time else None
    if event_time_unit is not None and event_time_unit not in EVENT_TIME_UNITS:
        raise ValidationError(
            f"event_time_unit must be one of {EVENT_TIME_UNITS} (epoch seconds, milliseconds, ...), "
            f"got {event_time_unit!r}"
        )
    if event_time_unit is not None and event_time is None:
        raise ValidationError("event_time_unit needs an event_time column")
    if event_time in pk:
        raise ValidationError(f"event_time {event_time!r} cannot also be a primary-key column")
    if not isinstance(online_enabled, bool):
        raise ValidationError(f"online_enabled must be True or False, got {online_enabled!r}")
    if features is not None and not isinstance(features, str) and isinstance(features, Sequence):
        upper = [f.name for f in features if isinstance(f, Feature) and f.name != f.name.lower()]
        if upper:
            log.warning(
                "feature name(s) %s have upper-case letters: fti lowers them, as Hopsworks does", upper
            )
            features = [
                Feature(f.name.lower(), f.dtype, f.description) if isinstance(f, Feature) else f
                for f in features
            ]
    declared = _check_features(features, pk, event_time)
    from fti.features.validation import suite_to_json

    return pk, event_time, declared, suite_to_json(expectation_suite)


def check_unchanged(
    existing: FeatureGroupMeta,
    pk: list[str],
    event_time: str | None,
    online_enabled: bool,
    description: str | None,
    features: list[Feature] | None,
    suite: dict[str, Any] | None,
    event_time_unit: str | None = None,
) -> None:
    """Raise AlreadyExistsError saying what differs when a ``get_or_create`` names an existing
    group with another definition (the description, features, suite and event-time unit count
    when given)."""
    name, version = existing.name, existing.version
    differences = [
        f"{field}: stored {stored!r}, given {given!r}"
        for field, stored, given in (
            ("primary_key", existing.primary_key, pk),
            ("event_time", existing.event_time, event_time),
            ("online_enabled", existing.online_enabled, online_enabled),
            (
                "description",
                existing.description,
                existing.description if description is None else description,
            ),
            (
                "event_time_unit",
                existing.event_time_unit,
                existing.event_time_unit if event_time_unit is None else event_time_unit,
            ),
        )
        if stored != given
    ]
    if suite is not None and suite != existing.expectation_suite:
        differences.append("expectation_suite: the stored suite differs from the given one")
    stored = None if existing.features is None else [(f.name, f.dtype) for f in existing.features]
    given = None if features is None else [(f.name, f.dtype) for f in features]
    if given is not None and given != stored:
        shown = "none yet" if stored is None else "[" + ", ".join(f"{n} {d}" for n, d in stored) + "]"
        differences.append(f"features: stored {shown}, given [{', '.join(f'{n} {d}' for n, d in given)}]")
    if not differences:
        return
    fixes = []
    if any(d.startswith("description") for d in differences):
        fixes.append(
            f"change the description with fs.get_feature_group({name!r}, {version}).update_description(...)"
        )
    if (
        stored is not None
        and given is not None
        and given[: len(stored)] == stored
        and len(given) > len(stored)
    ):
        fixes.append("add the new features with fg.append_features([...])")
    fixes.append(f"create version {version + 1} for a new definition")
    raise AlreadyExistsError(
        f"feature group {name!r} version {version} already exists with a different definition "
        f"({'; '.join(differences)}); {', or '.join(fixes)}"
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
    check_column_names(names, what="features")
    missing = [c for c in [*pk, *([event_time] if event_time else [])] if c not in names]
    if missing:
        raise ValidationError(f"features must declare the key and event time columns; missing {missing}")
    if event_time and next(f for f in features if f.name == event_time).dtype != "timestamp":
        raise ValidationError(f"event time feature {event_time!r} must have dtype 'timestamp'")
    return list(features)


def check_view(
    query: Query,
    labels: Sequence[str],
    transformations: Mapping[str, str] | None,
    description: str,
    on_demand: Sequence[Any] | None = None,
    request_fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Check a feature view's definition against its query (imports its on-demand functions).

    Returns:
        The definition as stored in the catalog: ``{"query": ..., "labels": ..., "transformations":
        ..., "on_demand": ..., "request_fields": ...}``.

    Raises:
        ValidationError: a query not built with ``fg.select(...)``, bad labels, an unknown
            transformation name, a transformed label, a non-string description.
        SchemaError: a label or transformed feature is not in the query, or has the wrong dtype.
    """
    from fti.features import on_demand as on_demand_checks
    from fti.features.transformations import check, parse

    if not isinstance(query, Query):
        raise ValidationError(
            f"query must be built with fg.select(...)/.join(...), got {type(query).__name__}"
        )
    if (
        isinstance(labels, str)
        or not isinstance(labels, Sequence)
        or not all(isinstance(x, str) for x in labels)
    ):
        raise ValidationError(f"labels must be a list of column names, got {labels!r}")
    dtypes = {c.name: c.dtype for c in query.columns()}
    missing = [x for x in labels if x not in dtypes]
    if missing:
        raise SchemaError(
            f"label(s) {missing} are not in the query; select them from the spine group "
            f"(query columns: {list(dtypes)})"
        )
    transformations = dict(transformations or {})
    if not all(isinstance(k, str) for k in transformations):
        raise ValidationError("transformations must map feature names to transformation names")
    on_labels = [k for k in transformations if k in labels]
    if on_labels:
        raise ValidationError(f"labels {on_labels} cannot be transformed; transformations apply to features")
    if all(name in labels for name in dtypes):
        raise ValidationError(
            f"the view has no feature columns: every selected column ({list(dtypes)}) is a label; "
            "select features too (fg.select_all() includes the primary-key and event-time columns)"
        )
    specs = {feature: parse(spec, feature) for feature, spec in transformations.items()}
    functions, fields = on_demand_checks.check_definition(query, labels, on_demand, request_fields)
    plan = on_demand_checks.OnDemandPlan(functions, fields, query, labels, "the feature view")
    check(specs, dict(plan.features))
    if not isinstance(description, str):
        raise ValidationError(f"description must be a string, got {description!r}")
    return {
        "query": query.to_dict(),
        "labels": list(labels),
        "transformations": transformations,
        "on_demand": functions,
        "request_fields": fields,
    }
