"""Running an evaluation: read the rows, score the model (and the baseline), compute, store."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fti.errors import NotFoundError, ValidationError
from fti.registry.evaluation import data
from fti.registry.evaluation.metrics import POSITIVE, Outputs, Task, compute, fairness, prepare
from fti.registry.evaluation.results import (
    Comparison,
    Evaluation,
    FairnessResult,
    GroupResult,
    SliceResult,
)
from fti.registry.evaluation.slicing import (
    SliceSpec,
    column_of,
    describe,
    feature_of,
    groups,
    parse_specs,
    spec_to_json,
)
from fti.types import ModelRef

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from fti.features.feature_view import FeatureView
    from fti.project import Project
    from fti.registry.model_registry import ModelRegistry
    from fti.registry.model_version import ModelVersion

DEFAULT_MIN_ROWS = 50
"""Slices and groups with fewer rows are reported but not gated (their figures are noise)."""
Grouping = tuple[str, "np.ndarray", list[str]]
"""A slicing of the rows: its name, each row's group, the groups in order."""


def evaluate(
    project: Project,
    model: str | ModelRef,
    *,
    split: str | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    slices: Sequence[SliceSpec] | None = None,
    sensitive: Sequence[SliceSpec] | None = None,
    baseline: str | ModelRef | None = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    label: str | None = None,
    prefer: str = "fastest",
) -> Evaluation:
    """Evaluate a model version on its feature view's data and store the result with the version.

    Args:
        project: The project holding the model.
        model: ``"fraud:4"``, ``"fraud@staging"`` or ``"fraud"`` (the latest version).
        split: A split of the model's training dataset version (default ``"test"``, unless a
            time range is given).
        start_time, end_time: Evaluate on the view's rows in ``[start_time, end_time)`` of the
            latest data instead (tz-aware; rows whose label is still missing are left out).
        slices: Columns to slice by (each value a slice) and :func:`~fti.registry.evaluation.bins`
            of numeric columns, e.g. ``["category", fti.bins("amount", [0, 50, 500])]``. A column
            may be any column of the view's rows (features untransformed, labels, keys, event
            time) or of its spine feature group.
        sensitive: Features to compute Fairlearn's fairness metrics over (binary classifiers),
            given like ``slices``.
        baseline: A model to score on the same rows (``"fraud@production"``); its inputs are built
            from these rows with its own transformations. An alias that points nowhere yet means
            nothing to compare.
        min_rows: Slices and sensitive groups with fewer rows are reported but not gated, and
            left out of the fairness disparities.
        label: The label column, when the view has several.
        prefer: Scorer choice, as for batch inference (:func:`fti.inference.get_scorer`).

    Returns:
        The stored :class:`~fti.registry.evaluation.Evaluation` (numbered per model version).

    Raises:
        ValidationError: bad arguments, a split the training dataset lacks, a view without
            labels, no labelled rows, fairness asked of a model that is not a binary classifier.
        SchemaError: an unknown slicing or sensitive column; a baseline whose inputs cannot be
            built from this view's rows.
        NotFoundError: an unknown model, version or baseline model.
    """
    from fti.inference.selection import check_prefer
    from fti.registry.evaluation import store
    from fti.registry.metrics import current_user

    started = time.perf_counter()
    ref = ModelRef.parse(model)
    slice_specs = parse_specs(slices, "slices")
    sensitive_specs = parse_specs(sensitive, "sensitive")
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise ValidationError(f"min_rows must be an integer >= 1, got {min_rows!r}")
    check_prefer(prefer)
    split = _check_source(split, start_time, end_time)
    baseline_ref = None if baseline is None else ModelRef.parse(baseline)
    registry = project.model_registry
    mv = registry.get_model(ref)
    fv = mv.feature_view()
    if fv is None:
        raise ValidationError(
            f"{mv.ref} was registered without a feature view, so there are no rows to evaluate it on; "
            "register it with feature_view=fv and training_dataset_version=..."
        )
    label_name = _label(fv, label)
    rows = data.read(fv, mv.training_dataset_version, split, start_time, end_time)
    table = data.with_columns(project, fv, rows, [column_of(s) for s in [*slice_specs, *sensitive_specs]])
    table, unlabelled = _labelled(table, label_name, fv)
    X = data.inputs(mv, fv, table)
    outputs, scorer = data.score(project, mv, X, prefer)
    y_raw = table.column(label_name).to_numpy()
    task, y, out = prepare(y_raw, outputs, mv.signature.classes, mv.ref)
    if sensitive_specs and task.kind != "binary":
        raise ValidationError(
            f"fairness metrics (sensitive={[feature_of(s) for s in sensitive_specs]}) need a binary "
            f"classifier; {mv.ref} is a {task.kind} model: slice by those columns instead"
        )
    slicings = [_grouping(table, s) for s in slice_specs]
    groupings = [_grouping(table, s) for s in sensitive_specs]
    metrics, by_slice, by_feature = _figures(task, y, out, slicings, groupings, min_rows)
    comparison = None
    if baseline_ref is not None:
        base = _baseline(registry, baseline_ref)
        comparison = Comparison(str(baseline_ref), None if base is None else base.ref)
        if base is not None:
            base_out = (
                out if base.id == mv.id else _baseline_outputs(project, base, fv, table, y_raw, task, prefer)
            )
            base_metrics, base_slices, base_features = _figures(
                task, y, base_out, slicings, groupings, min_rows
            )
            comparison = Comparison(comparison.ref, comparison.model, base_metrics)
            by_slice = [_with_baseline(s, b.metrics) for s, b in zip(by_slice, base_slices, strict=True)]
            by_feature = {k: _with_baseline(f, base_features[k].metrics) for k, f in by_feature.items()}
    content: dict[str, Any] = {
        "task": task.kind,
        "rows": len(y),
        "source": {**rows.source, "unlabelled_rows": unlabelled},
        "settings": {
            "slices": [describe(s) for s in slice_specs],
            "sensitive": [describe(s) for s in sensitive_specs],
            "slice_specs": [spec_to_json(s) for s in slice_specs],
            "sensitive_specs": [spec_to_json(s) for s in sensitive_specs],
            "min_rows": min_rows,
            "label": label_name,
        },
        "metrics": metrics,
        "slices": [s.to_dict() for s in by_slice],
        "fairness": {k: f.to_dict() for k, f in by_feature.items()},
        "baseline": None if comparison is None else comparison.to_dict(),
        "scorer": scorer,
        "seconds": time.perf_counter() - started,
    }
    number = store.save(project.backends.catalog, mv, content, current_user())
    return registry.get_evaluation(mv.ref, number)


def _check_source(split: object, start_time: datetime | None, end_time: datetime | None) -> str | None:
    from fti.features.records import SPLITS

    ranged = start_time is not None or end_time is not None
    if split is not None and ranged:
        raise ValidationError(
            f"give either split={split!r} (rows of the training dataset) or start_time/end_time (rows of "
            "the latest data), not both"
        )
    if split is None:
        return None if ranged else "test"
    if split not in SPLITS:
        raise ValidationError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return str(split)


def _label(fv: FeatureView, label: str | None) -> str:
    labels = fv.labels
    if not labels:
        raise ValidationError(
            f"feature view {fv.name!r} v{fv.version} has no label column, so predictions cannot be "
            "judged; evaluate a model of a view with labels"
        )
    if label is None:
        if len(labels) > 1:
            raise ValidationError(f"feature view {fv.name!r} has labels {labels}; pick one with label=")
        return labels[0]
    if label not in labels:
        raise ValidationError(
            f"label {label!r} is not a label of feature view {fv.name!r} (labels: {labels})"
        )
    return label


def _labelled(table: pa.Table, label: str, fv: FeatureView) -> tuple[pa.Table, int]:
    """The rows that have a label, and how many did not (labels that have not arrived yet)."""
    import pyarrow.compute as pc

    has_label = pc.is_valid(table.column(label))
    kept = table.filter(has_label)
    if kept.num_rows == 0:
        raise ValidationError(
            f"no labelled rows to evaluate on ({table.num_rows} rows of feature view {fv.name!r}, none with "
            f"a {label!r}); choose another split or time range"
        )
    return kept, table.num_rows - kept.num_rows


def _grouping(table: pa.Table, spec: SliceSpec) -> Grouping:
    labels, order = groups(table.column(column_of(spec)), spec)
    return feature_of(spec), labels, order


def _figures(
    task: Task,
    y: np.ndarray,
    out: Outputs,
    slicings: list[Grouping],
    groupings: list[Grouping],
    min_rows: int,
) -> tuple[dict[str, float], list[SliceResult], dict[str, FairnessResult]]:
    """One model's metrics overall and per slice, and its fairness per sensitive feature."""
    import numpy as np

    by_slice = []
    for feature, labels, order in slicings:
        for value in order:
            rows = np.flatnonzero(labels == value)
            metrics = compute(task, y[rows], out.take(rows))
            by_slice.append(SliceResult(feature, value, len(rows), metrics, len(rows) >= min_rows))
    by_feature = {}
    for feature, labels, order in groupings:
        counts = {value: int(np.count_nonzero(labels == value)) for value in order}
        eligible = [value for value in order if counts[value] >= min_rows]
        disparities, rates = fairness(task, y, out, labels, eligible)
        positive = y == POSITIVE
        members = [
            GroupResult(
                value,
                counts[value],
                int(np.count_nonzero(positive & (labels == value))),
                rates.get(value, {}),
                value in eligible,
            )
            for value in order
        ]
        by_feature[feature] = FairnessResult(feature, disparities, members)
    return compute(task, y, out), by_slice, by_feature


def _baseline(registry: ModelRegistry, ref: ModelRef) -> ModelVersion | None:
    """The baseline's version, or None when its alias points nowhere (yet)."""
    try:
        return registry.get_model(ref)
    except NotFoundError:
        if ref.alias is None:
            raise
        registry.aliases(ref.name)  # NotFoundError when the model itself is unknown
        return None


def _baseline_outputs(
    project: Project,
    base: ModelVersion,
    fv: FeatureView,
    table: pa.Table,
    y_raw: np.ndarray,
    task: Task,
    prefer: str,
) -> Outputs:
    X = data.inputs(base, fv, table)
    outputs, _ = data.score(project, base, X, prefer)
    base_task, _, out = prepare(y_raw, outputs, base.signature.classes, base.ref)
    if base_task != task:
        raise ValidationError(
            f"baseline {base.ref} is a {base_task.kind} model with classes {list(base_task.classes)}, the "
            f"candidate a {task.kind} model with classes {list(task.classes)}; compare models of one task"
        )
    return out


def _with_baseline(result: Any, baseline: dict[str, float]) -> Any:
    from dataclasses import replace

    return replace(result, baseline=baseline)
