"""The rows an evaluation judges, and each model's inputs built from them.

The rows are the model's own feature view's: a split of the training dataset version it was
trained on (re-read exactly as stored), or the point-in-time join of the view over a time range of
the latest data, with labels. They arrive untransformed (keys, event time, features, labels); each
model's input matrix is built from them with *its* training dataset's fitted transformations and
scored through the scorer cache that batch inference uses. A slicing column the view does not
select is looked up in the view's spine feature group by the rows' key and event time, in the
snapshot the rows were read from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, SchemaError, ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from fti.features.feature_view import FeatureView
    from fti.project import Project
    from fti.registry.model_version import ModelVersion


@dataclass(frozen=True)
class Rows:
    """Evaluated rows as read: untransformed view columns, where they came from, and the Delta
    version of the spine feature group they were read at (for looking up more of its columns)."""

    table: pa.Table
    source: dict[str, Any]
    spine_version: int | None


def read(
    fv: FeatureView,
    training_dataset_version: int | None,
    split: str | None,
    start_time: datetime | None,
    end_time: datetime | None,
) -> Rows:
    """The rows of ``split`` of the training dataset version, or of ``[start_time, end_time)``.

    Raises:
        ValidationError: a split the training dataset does not have, a bad time range.
        NotFoundError: the training dataset version is gone.
    """
    import pyarrow.compute as pc

    from fti.features import pit, training_data

    view = {"feature_view": fv.name, "feature_view_version": fv.version}
    if split is not None:
        if training_dataset_version is None:
            raise ValidationError(
                f"the model was registered without a training dataset version of feature view {fv.name!r}, "
                "so it has no test split; evaluate it on a time range (start_time=..., end_time=...)"
            )
        record = training_data.get(fv, training_dataset_version)
        if split not in record.splits:
            raise ValidationError(
                f"training dataset version {record.version} of feature view {fv.name!r} has no split "
                f"{split!r}; it has {record.splits or ['none (not split)']}; pass split= one of them, or a "
                "time range"
            )
        table = training_data.read(fv, record)
        table = table.filter(pc.equal(table.column(training_data.SPLIT_COLUMN), split))
        table = table.drop_columns([training_data.SPLIT_COLUMN, training_data.ROW_COLUMN])
        spine_version = record.input_versions.get(fv.query.spine.table_name)
        source = {**view, "training_dataset_version": record.version, "split": split}
        return Rows(table, source, spine_version)
    training_data.check_time_range(start_time, end_time, fv.query.spine)
    sources, versions = training_data.snapshot(fv.query, fv.project.backends.offline)
    table = pit.run(fv.query, sources, start_time=start_time, end_time=end_time)
    source = {
        **view,
        "start_time": None if start_time is None else start_time.isoformat(),
        "end_time": None if end_time is None else end_time.isoformat(),
    }
    return Rows(table, source, versions.get(fv.query.spine.table_name))


def with_columns(project: Project, fv: FeatureView, rows: Rows, names: list[str]) -> pa.Table:
    """``rows.table`` plus the columns ``names`` it lacks, from the view's spine feature group.

    Raises:
        SchemaError: a column is neither in the rows nor in the spine group.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    table = rows.table
    missing = [n for n in dict.fromkeys(names) if n not in table.column_names]
    if not missing:
        return table
    spine = fv.query.spine
    spine_columns = [f.name for f in spine.features or []]
    unknown = [n for n in missing if n not in spine_columns]
    if unknown:
        shown = [c for c in table.column_names if not c.startswith("__")]
        raise SchemaError(
            f"column(s) {unknown} are neither in the rows of feature view {fv.name!r} v{fv.version} "
            f"({shown}) nor in its spine feature group {spine.name!r} ({spine_columns}); slice by one "
            "of those, or add the column to the view"
        )
    keys = fv.query.key_columns()
    if rows.spine_version is None or table.num_rows == 0:
        found = pa.table({n: pa.nulls(table.num_rows) for n in missing})
        return pa.Table.from_arrays([*table.columns, *found.columns], [*table.column_names, *missing])
    dataset = project.backends.offline.dataset(spine.table_name, version=rows.spine_version)
    looked_up = dataset.to_table(columns=[*keys, *missing])
    position = "__fti_position"
    numbered = table.select(keys).append_column(position, pa.array(np.arange(table.num_rows)))
    joined = numbered.join(looked_up, keys=keys, join_type="left outer")
    if joined.num_rows != table.num_rows:
        raise SchemaError(
            f"spine feature group {spine.name!r} holds several rows per key and event time, so its "
            f"columns {missing} cannot be matched to the evaluated rows; add them to the view instead"
        )
    joined = joined.take(pc.sort_indices(joined.column(position)))
    for name in missing:
        table = table.append_column(name, joined.column(name))
    return table


def inputs(model: ModelVersion, fv: FeatureView, table: pa.Table) -> np.ndarray:
    """``model``'s input matrix for the rows of ``fv`` in ``table``, built with the transformations
    fitted on its own training dataset.

    A model of another feature view (a baseline) needs that view's untransformed features among
    the columns of ``table``; a model without a feature view needs its signature's inputs there.

    Raises:
        SchemaError: the model's inputs cannot be built from these rows.
    """
    from fti.inference.matrix import to_matrix

    other = fv if (model.feature_view_name, model.feature_view_version) == (fv.name, fv.version) else None
    if other is None and model.feature_view_name is not None:
        try:
            other = model.feature_view()
        except NotFoundError as exc:
            raise SchemaError(
                f"{model.ref} was trained from feature view {model.feature_view_name!r} "
                f"v{model.feature_view_version}, which no longer exists: {exc}"
            ) from exc
    td = model.training_dataset_version
    if other is None:
        names = [spec.name for spec in model.signature.inputs]
        absent = [n for n in names if n not in table.column_names]
        if absent:
            raise SchemaError(
                f"{model.ref} has no feature view and its inputs {absent} are not columns of feature view "
                f"{fv.name!r} v{fv.version}; evaluate against a model of this view"
            )
        return to_matrix(table, names)
    needed = other.feature_names(transformed=False)
    absent = [n for n in needed if n not in table.column_names]
    if absent:
        raise SchemaError(
            f"the inputs of {model.ref} (feature view {other.name!r} v{other.version}) cannot be built "
            f"from the rows of feature view {fv.name!r} v{fv.version}: it lacks {absent}; compare models "
            "whose features this view selects"
        )
    try:
        transformed = other.transformer(td).apply_table(table)
        return to_matrix(transformed, other.feature_names(transformed=True, training_dataset_version=td))
    except (TypeError, ValueError, KeyError) as exc:  # e.g. a column of another type than it was fitted on
        if isinstance(exc, SchemaError):
            raise
        raise SchemaError(
            f"the inputs of {model.ref} cannot be built from the rows of feature view {fv.name!r} "
            f"v{fv.version}: {exc}"
        ) from exc


def score(project: Project, model: ModelVersion, X: np.ndarray, prefer: str) -> tuple[dict[str, Any], str]:
    """``model``'s outputs on ``X`` and the scorer kind that ran: the cached verified scorer, else
    the native model and its fastest verified scorer, as batch inference takes them."""
    from fti.inference.cache import ScorerCache
    from fti.inference.parallel import ParallelScorer
    from fti.inference.selection import TIMING_ROWS

    cache = ScorerCache.at_home(project.settings.home)
    chosen = None if prefer == "native" else cache.load(model, prefer=prefer)
    if chosen is None:
        native = model.load()
        chosen = cache.build(model, native, prefer=prefer, rows=X, timing_sample=X[:TIMING_ROWS])
    scorer = ParallelScorer(chosen)
    try:
        return scorer.predict(X), scorer.kind
    finally:
        scorer.close()
