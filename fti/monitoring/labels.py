"""Ground truth that arrives later: labels attached to logged predictions, and the join.

``project.monitoring.log_labels(target, frame)`` takes labels for a deployment's inference log or
a predictions feature group and stores them in the feature group ``<target>_labels``, keyed as the
join needs them:

- **by request id**: the frame has ``request_id`` (and ``row``, the row within the request,
  default 0); a label applies to every logged row with that id and row (a client that reused an
  id gets the label on each of its rows);
- **by primary key and event time**: the frame has the monitored data's entity key column(s) and
  its event-time column (``timestamp`` for an inference log), matched exactly.

Before anything is written, every label key is looked up in the monitored data (a streamed
semi-join in DuckDB): unknown keys are counted and reported, never silently dropped
(``unknown="error"``, the default, refuses the whole frame; ``"skip"`` stores the known ones,
``"keep"`` stores all, for labels that arrive before their predictions are logged). A label of
the same key sent again replaces the earlier one (the group upserts). A label whose type does
not match the model's label column is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, SchemaError, ValidationError
from fti.monitoring.data import LOG_TIME, MonitoredData

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup
    from fti.project import Project

LABELS_SUFFIX = "_labels"
LABELED_AT = "labeled_at"
REQUEST_KEYS = ("request_id", "row")
UNKNOWN = ("error", "skip", "keep")
_FAMILIES = {
    "int": ("int8", "int16", "int32", "int64", "bool"),
    "float": ("int8", "int16", "int32", "int64", "float32", "float64"),
    "bool": ("bool", "int8", "int16", "int32", "int64"),
    "string": ("string",),
}


def labels_group_name(target: str) -> str:
    return f"{target}{LABELS_SUFFIX}"


@dataclass(frozen=True)
class LabelTarget:
    """What labels of a target join to."""

    name: str
    data: MonitoredData
    keys: list[str]
    """Entity key column(s) of the monitored data (empty: only request ids can join)."""
    time_column: str
    label: str | None
    """The model's label column, when known."""
    label_dtype: str | None


@dataclass(frozen=True)
class LabelsResult:
    """What ``log_labels`` did."""

    target: str
    join: str
    """``"request_id"`` or ``"keys"``."""
    rows: int
    matched: int
    """Label rows whose key is in the monitored data."""
    unknown: int
    """Label rows whose key is not (yet) in the monitored data."""
    unknown_examples: list[dict[str, Any]] = field(default_factory=list)
    written: int = 0
    feature_group: str = ""
    commit_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "join": self.join,
            "rows": self.rows,
            "matched": self.matched,
            "unknown": self.unknown,
            "unknown_examples": self.unknown_examples,
            "written": self.written,
            "feature_group": self.feature_group,
            "commit_version": self.commit_version,
        }


def resolve_target(project: Project, target: str, model: str | None = None) -> LabelTarget:
    """A deployment or feature group named ``target``, with its keys and the model's label."""
    from fti._names import check_name

    check_name(target, "deployment or feature group")
    deployments = {d.name: d for d in project.serving.list()}
    if target in deployments:
        data = MonitoredData("deployment", target)
        model = model or deployments[target].model
        time_column = LOG_TIME
    else:
        try:
            project.feature_store.get_feature_group(target)
        except NotFoundError:
            raise NotFoundError(
                f"no deployment or feature group named {target!r} in project {project.name!r} "
                f"(deployments: {sorted(deployments) or 'none'}); labels attach to a deployment's "
                "inference log or to a predictions feature group"
            ) from None
        data = MonitoredData("feature_group", target)
        time_column = data.time_column(project)
        if model is None:  # the model of a monitor on this group, if any
            from fti.monitoring import records

            monitors = records.list_monitors(project.backends.catalog, project.id)
            model = next((m.model for m in monitors if m.model and m.source["name"] == target), None)
    keys: list[str] = []
    label = label_dtype = None
    if model is not None:
        mv = project.model_registry.get_model(model)
        fv = mv.feature_view()
        if fv is not None:
            keys = list(fv.primary_key)
            if fv.labels:
                label = fv.labels[0]
                label_dtype = {c.name: c.dtype for c in fv.query.columns()}[label]
    if data.kind == "feature_group":
        keys = list(data.groups(project)[0].primary_key)
    return LabelTarget(target, data, keys, time_column, label, label_dtype)


def log_labels(
    project: Project,
    target: str,
    frame: Any,
    *,
    label: str | None = None,
    unknown: str = "error",
    model: str | None = None,
) -> LabelsResult:
    """Attach labels to logged predictions (see the module docs).

    Raises:
        NotFoundError: no deployment or feature group ``target``.
        ValidationError: an empty frame, null or duplicate keys, a bad ``unknown``, unknown keys
            (with ``unknown="error"``): nothing is written.
        SchemaError: missing key or label columns, or a label type unlike the model's.
    """
    from fti.features._frames import normalize, to_arrow

    if unknown not in UNKNOWN:
        raise ValidationError(f"unknown must be one of {', '.join(UNKNOWN)}, got {unknown!r}")
    info = resolve_target(project, target, model)
    table = normalize(to_arrow(frame, what="labels"), what="labels")
    if not table.num_rows:
        raise ValidationError("labels: the frame has no rows")
    join, keys = _join_columns(info, table)
    if "row" in keys and "row" not in table.column_names:
        import pyarrow as pa

        table = table.append_column("row", pa.array([0] * table.num_rows, pa.int64()))
    label = _label_column(info, table, keys, label)
    table = table.select([*keys, label])
    _check_keys(info, table, keys)
    found = matched_rows(project, info.data, table, keys)
    missing = [i for i in range(table.num_rows) if i not in found]
    examples = [{k: _plain(table.column(k)[i].as_py()) for k in keys} for i in missing[:5]]
    result = LabelsResult(target, join, table.num_rows, len(found), len(missing), examples)
    if missing and unknown == "error":
        raise ValidationError(
            f"{len(missing)} of {table.num_rows} label(s) match no logged prediction of {info.data.describe()} "
            f"(for example {examples}); nothing was written. Check the keys, or pass unknown='skip' to store "
            "the known ones or unknown='keep' to store all (labels that arrive before their predictions)"
        )
    if missing and unknown == "skip":
        import pyarrow as pa

        table = table.take(pa.array(sorted(found), pa.int64()))
        if not table.num_rows:
            return result
    group = _labels_group(project, info, keys, label)
    import pyarrow as pa

    labeled_at = pa.array([datetime.now(UTC)] * table.num_rows, pa.timestamp("us", tz="UTC"))
    inserted = group.insert(table.append_column(LABELED_AT, labeled_at), statistics=False)
    return LabelsResult(
        target,
        join,
        result.rows,
        result.matched,
        result.unknown,
        examples,
        inserted.rows,
        group.name,
        inserted.version,
    )


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _join_columns(info: LabelTarget, table: pa.Table) -> tuple[str, list[str]]:
    names = table.column_names
    if "request_id" in names:
        if info.data.kind != "deployment":
            raise SchemaError(
                f"labels of feature group {info.name!r} join by its key {info.keys} and event time "
                f"{info.time_column!r}, not by request_id"
            )
        return "request_id", list(REQUEST_KEYS)
    keys = [*info.keys, info.time_column]
    missing = [k for k in keys if k not in names]
    if not info.keys or missing:
        request = " or request_id (and row)" if info.data.kind == "deployment" else ""
        raise SchemaError(
            f"labels of {info.data.describe()} need the column(s) {keys if info.keys else [info.time_column]}"
            f"{request}; the frame has {names}"
            + ("" if info.keys else " (the target's model has no feature view, so only request ids can join)")
        )
    return "keys", keys


def _label_column(info: LabelTarget, table: pa.Table, keys: list[str], label: str | None) -> str:
    from fti.types import dtype_of

    others = [n for n in table.column_names if n not in keys]
    if label is None:
        label = info.label if info.label in others else (others[0] if len(others) == 1 else None)
    if label is None or label not in table.column_names:
        raise SchemaError(
            f"labels: name the label column with label=... (expected {info.label!r} among {others})"
            if info.label
            else f"labels: pass label=<column> (one of {others})"
        )
    given = dtype_of(table.schema.field(label).type) or "unknown"
    if info.label_dtype is not None:
        family = (
            "string"
            if info.label_dtype == "string"
            else "bool"
            if info.label_dtype == "bool"
            else ("float" if info.label_dtype.startswith("float") else "int")
        )
        if given not in _FAMILIES[family]:
            raise SchemaError(
                f"label column {label!r} holds {given} values, but the model's label {info.label!r} is "
                f"{info.label_dtype}; convert the labels (nothing was written)"
            )
    return label


def _check_keys(info: LabelTarget, table: pa.Table, keys: list[str]) -> None:
    import pyarrow.compute as pc

    nulls = [k for k in keys if table.column(k).null_count]
    if nulls:
        raise ValidationError(f"labels: key column(s) {nulls} hold nulls; every label needs its full key")
    if table.num_rows > 1:
        counts = table.group_by(keys).aggregate([([], "count_all")])
        dupes = counts.filter(pc.greater(counts.column("count_all"), 1))
        if dupes.num_rows:
            first = {k: _plain(dupes.column(k)[0].as_py()) for k in keys}
            raise ValidationError(
                f"labels: {dupes.num_rows} key(s) appear more than once in the frame (e.g. {first}); send one "
                "label per key (a later log_labels call replaces a label)"
            )


def _tables_reader(tables: Iterator[pa.Table]) -> pa.RecordBatchReader | None:
    import pyarrow as pa

    first = next(tables, None)
    if first is None:
        return None

    def batches() -> Iterator[pa.RecordBatch]:
        yield from first.to_batches()
        for table in tables:
            yield from table.to_batches()

    return pa.RecordBatchReader.from_batches(first.schema, batches())


def matched_rows(project: Project, data: MonitoredData, table: pa.Table, keys: list[str]) -> set[int]:
    """Indices of the rows of ``table`` whose ``keys`` occur in the monitored data (all times)."""
    import pyarrow as pa

    from fti._duckdb import connect, fetch_arrow, quote

    schema = data.schema(project)
    missing = [k for k in keys if k not in schema]
    if missing:
        return set()
    labels = table.select(keys).append_column("__i", pa.array(range(table.num_rows), pa.int64()))
    con = connect()
    try:
        con.register("labels", labels)
        reader = _tables_reader(data.batches(project, keys, None, None))
        if reader is None:
            return set()
        con.register("logged", reader)
        on = " AND ".join(f"l.{quote(k)} = s.{quote(k)}" for k in keys)
        found = fetch_arrow(con, f"SELECT DISTINCT l.__i FROM labels l SEMI JOIN logged s ON {on}")
    finally:
        con.close()
    return {int(i) for i in found.column(0).to_pylist()}


def _labels_group(project: Project, info: LabelTarget, keys: list[str], label: str) -> FeatureGroup:
    fs = project.feature_store
    name = labels_group_name(info.name)
    if len(name) > 63:
        raise ValidationError(
            f"labels group name {name!r} is longer than 63 characters: use a shorter target name"
        )
    request = keys == list(REQUEST_KEYS)
    primary = list(REQUEST_KEYS) if request else list(info.keys)
    event_time = None if request else info.time_column
    try:
        group = fs.get_feature_group(name, 1)
    except NotFoundError:
        return fs.get_or_create_feature_group(
            name,
            1,
            primary_key=primary,
            event_time=event_time,
            description=f"Labels of {info.data.describe()} (project.monitoring.log_labels).",
        )
    if group.primary_key != primary or group.event_time != event_time:
        how = (
            "request_id (and row)"
            if group.event_time is None
            else f"{group.primary_key} and {group.event_time!r}"
        )
        raise SchemaError(f"labels of {info.name!r} are stored by {how}; send them keyed the same way")
    stored = [
        f.name
        for f in group.features or []
        if f.name not in (*primary, LABELED_AT, *([event_time] if event_time else []))
    ]
    if stored and stored != [label]:
        raise SchemaError(
            f"labels of {info.name!r} are stored in column {stored[0]!r}; send that column, not {label!r}"
        )
    return group


def labels_group(project: Project, target: str) -> FeatureGroup | None:
    """The labels group of ``target`` (None before the first labels)."""
    try:
        return project.feature_store.get_feature_group(labels_group_name(target), 1)
    except NotFoundError:
        return None


def join_window(
    project: Project,
    data: MonitoredData,
    columns: list[str],
    start: datetime,
    end: datetime,
    target: str | None = None,
) -> pa.Table | None:
    """The window's rows that have a label: ``columns`` plus the label as ``__label`` (None when
    the target has no labels yet). The latest label of a key wins."""
    from fti._duckdb import connect, fetch_arrow, quote

    group = labels_group(project, target or data.name)
    if group is None or group.latest_commit_version() is None:
        return None
    features = [f.name for f in group.features or []]
    keys = [*group.primary_key, *([group.event_time] if group.event_time else [])]
    label = next(n for n in features if n not in (*keys, LABELED_AT))
    wanted = list(dict.fromkeys([*columns, *keys]))
    if not set(wanted) <= set(data.schema(project)):
        return None
    reader = _tables_reader(data.batches(project, wanted, start, end))
    if reader is None:
        return None
    con = connect()
    try:
        con.register("labels", group.read_arrow(columns=[*keys, label]))
        con.register("logged", reader)
        on = " AND ".join(f"s.{quote(k)} = l.{quote(k)}" for k in keys)
        select = ", ".join(f"s.{quote(c)}" for c in columns)
        return fetch_arrow(
            con, f"SELECT {select}, l.{quote(label)} AS __label FROM logged s JOIN labels l ON {on}"
        )
    finally:
        con.close()
