"""Pushing rows into a feature group: online at once, offline through a durable buffer.

``fg.push(rows)`` checks the rows like an insert (schema, tz-aware event times, keys, the
expectation suite), appends them to the project's push buffer (durable before the call returns),
then upserts the latest row per key into the online store, so a feature is readable by
``get_feature_vector`` within milliseconds. The :class:`~fti.streaming.committer.Committer`
commits buffered rows to the offline Delta table in micro-batches (every N rows or T seconds),
through the feature group's own insert path, and removes them from the buffer only afterwards.

Nothing acknowledged is lost: an entry that was appended is committed even if the process dies
right after (the next committer replays it), and replays are idempotent because the commit is an
upsert by (primary key, event time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import SchemaError, ValidationError
from fti.streaming._tables import encode, last_per_key

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup


@dataclass(frozen=True)
class PushResult:
    """What a push did."""

    rows: int
    """Rows accepted (appended to the buffer)."""
    online_rows: int
    """Rows written to the online store (the latest per key; 0 for offline-only groups)."""
    entry: str
    """The buffer entry holding the rows until their offline commit."""


def check_pushable(fg: FeatureGroup) -> None:
    """Raise when rows cannot be pushed into ``fg`` at all."""
    if getattr(fg, "is_external", False):
        raise ValidationError(
            f"feature group {fg.name!r} is external (read from its source at query time); push "
            "rows into a feature group that stores them"
        )
    if fg.features is None:
        raise SchemaError(
            f"feature group {fg.name!r} has no schema yet, and pushed rows are checked against it: "
            "declare features=[fti.Feature(name, dtype), ...] when creating the group, or insert() "
            "a first batch"
        )


def prepare(fg: FeatureGroup, data: Any, validation: str = "strict") -> pa.Table:
    """``data`` checked against ``fg`` and in its stored column types (raises before any write)."""
    from fti.features import ingestion

    if validation not in ("strict", "none"):
        raise ValidationError(f"push validation must be 'strict' or 'none', got {validation!r}")
    check_pushable(fg)
    table, _ = ingestion.prepare(fg, data)
    ingestion.run_validation(fg, table, validation)
    return table


def push(fg: FeatureGroup, data: Any, *, validation: str = "strict") -> PushResult:
    """:meth:`FeatureGroup.push <fti.features.feature_group.FeatureGroup.push>`."""
    table = prepare(fg, data, validation)
    return write(fg, table)


def write(fg: FeatureGroup, table: pa.Table) -> PushResult:
    """Buffer and publish rows already checked by :func:`prepare` (or produced by fti itself in
    the group's column types, as a stream pipeline's aggregates are)."""
    from fti.streaming import committer

    backends = fg.project.backends
    # Durable first: once appended, the rows reach the offline table whatever happens next; a
    # failure below reports an error although the rows will still be committed (at least once).
    entry = backends.buffer.append(fg.table_name, encode(table), table.num_rows)
    online_rows = 0
    if fg.online_enabled:
        latest = last_per_key(table, fg.primary_key, fg.event_time)
        online_rows = backends.online.write(
            fg.table_name, latest, key_columns=fg.primary_key, event_time=fg.event_time, version=None
        )
    committer.notify(fg.project)
    return PushResult(rows=table.num_rows, online_rows=online_rows, entry=entry)
