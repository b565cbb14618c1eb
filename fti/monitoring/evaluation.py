"""Evaluating one window: stream it once, test every column, estimate and measure performance.

:func:`evaluate` reads the window's monitored columns as a stream of batches (memory bounded by
the batch, see :mod:`fti.monitoring.summaries`), feeds the CBPE estimator with the positive
class's scores on the way, then runs each column's drift tests and data-quality checks against
the reference profile. When labels exist, the window's labelled rows are joined
(:func:`fti.monitoring.labels.join_window`) and the realized metrics computed overall, per model
version and per slice.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from fti.monitoring import drift, labels, performance
from fti.monitoring.drift import Outcome
from fti.monitoring.results import MonitorResult, PerformanceValue
from fti.monitoring.summaries import WindowSummary

if TYPE_CHECKING:
    import pyarrow as pa

    from fti.monitoring.data import MonitoredData
    from fti.monitoring.profiles import ColumnProfile, Profile
    from fti.project import Project

MAX_SLICE_VALUES = 20
"""A categorical slice column gets one slice per value, for its most frequent values."""


def data_names(profile: Profile, columns: Sequence[str], schema: Mapping[str, str]) -> dict[str, str]:
    """Profile column -> its name in the monitored data (itself or an alias), for those present."""
    out: dict[str, str] = {}
    for name in columns:
        ref = profile.columns.get(name)
        if ref is None:
            continue
        found = next((n for n in (name, *ref.aliases) if n in schema), None)
        if found is not None:
            out[name] = found
    return out


def tests_for(
    column: str, reference: ColumnProfile, reference_rows: int, tests: Any
) -> list[tuple[str, str]]:
    """``(test, reason)`` of each test a column runs."""
    chosen = tests.get(column, "auto") if isinstance(tests, dict) else tests
    names = [chosen] if isinstance(chosen, str) else list(chosen)
    out = []
    for name in names:
        if name == "auto":
            out.append(drift.choose(reference, reference_rows))
        else:
            out.append((name, "chosen in the monitor's tests"))
    return out


def _threshold(column: str, test: str, thresholds: Mapping[str, float]) -> float:
    return float(thresholds.get(column, thresholds.get(test, drift.DEFAULT_THRESHOLDS[test])))


def evaluate(
    project: Project,
    data: MonitoredData,
    profile: Profile,
    config: Mapping[str, Any],
    monitor: str,
    start: datetime,
    end: datetime,
) -> MonitorResult:
    """Evaluate ``[start, end)`` of ``data`` against ``profile`` (no catalog writes)."""
    schema = data.schema(project)
    columns = [*config["features"], *config["predictions"]]
    names = data_names(profile, columns, schema)
    references = {c: profile.columns[c] for c in names}
    roles = {c: profile.columns[c].role for c in columns if c in profile.columns}
    model = profile.model or {}
    calibration = model.get("calibration")
    score = None
    if calibration and model.get("task") == "binary":  # read for CBPE even when not a monitored column
        score = data_names(profile, ["predict_proba_1"], schema).get("predict_proba_1")
    window = WindowSummary(references, names)
    estimator = None
    if score is not None and calibration is not None:
        estimator = performance.CbpeEstimator(performance.Calibration.from_dict(calibration))
    read = list(dict.fromkeys([*names.values(), *([score] if score else [])]))
    if read:
        for batch in data.batches(project, read, start, end):
            window.update(batch)
            if estimator is not None:
                estimator.update(batch.column(score).to_numpy(zero_copy_only=False).astype(np.float64))
    thresholds = {**drift.DEFAULT_THRESHOLDS, **(config.get("thresholds") or {})}
    outcomes: list[Outcome] = []
    drifted: dict[str, bool] = {}
    for column in columns:
        ref = profile.columns.get(column)
        if ref is None:
            continue
        summary = window.columns.get(column)
        for test, reason in tests_for(column, ref, profile.rows, config.get("tests", "auto")):
            threshold = _threshold(column, test, thresholds)
            if summary is None or not summary.count:
                why = (
                    "no values in the window"
                    if summary is not None
                    else "the monitored data has no such column"
                )
                outcomes.append(Outcome(column, test, "drift", float("nan"), threshold, None, False, why))
                continue
            outcome = drift.run_test(test, ref, summary, threshold, reason)
            outcomes.append(outcome)
            drifted[column] = drifted.get(column, False) or outcome.drifted
        if summary is not None and summary.rows:
            outcomes.extend(drift.quality_checks(ref, summary, thresholds))
    # dataset drift is judged on the features (on the predictions when only they are monitored)
    counted = [c for c in drifted if roles.get(c) == "feature"] or list(drifted)
    share = sum(drifted[c] for c in counted) / len(counted) if counted else 0.0
    values: list[PerformanceValue] = []
    if window.rows and estimator is not None:
        reference = model.get("test_metrics") or {}
        values += [
            PerformanceValue(metric, value, "estimated", estimator.rows, reference=reference.get(metric))
            for metric, value in estimator.estimate().items()
        ]
    if window.rows and model.get("task"):
        values += realized(project, data, profile, config, schema, start, end)
    return MonitorResult(
        monitor=monitor,
        window_start=start,
        window_end=end,
        status="ok" if window.rows else "no_data",
        rows=window.rows,
        reference_rows=profile.rows,
        outcomes=outcomes,
        roles=roles,
        dataset_drift=bool(counted) and share >= drift.DATASET_DRIFT_SHARE,
        drift_share=share,
        performance=values,
    )


def realized(
    project: Project,
    data: MonitoredData,
    profile: Profile,
    config: Mapping[str, Any],
    schema: Mapping[str, str],
    start: datetime,
    end: datetime,
) -> list[PerformanceValue]:
    """Realized metrics of the window's labelled rows: overall, per model version, per slice."""
    model = profile.model or {}
    task = model["task"]
    outputs = [c for c in profile.columns if profile.columns[c].role == "prediction"]
    names = data_names(profile, outputs, schema)
    if task == "binary":
        needed = ["predict_proba_1"]
    elif task == "multiclass":
        needed = ["predict", *[f"predict_proba_{j}" for j in range(len(model["classes"]))]]
    else:
        needed = ["predict"]
    if not all(n in names for n in needed):
        return []
    slices = [s for s in config.get("slices") or [] if s["column"] in schema]
    extra = [c for c in ("model_version",) if c in schema] + [s["column"] for s in slices]
    joined = labels.join_window(
        project, data, [*(names[n] for n in needed), *dict.fromkeys(extra)], start, end
    )
    if joined is None or not joined.num_rows:
        return []
    reference = model.get("test_metrics") or {}
    groups: list[tuple[int, str, np.ndarray]] = [(0, "", np.ones(joined.num_rows, dtype=bool))]
    if "model_version" in joined.column_names:
        versions = np.asarray(joined.column("model_version").to_numpy(zero_copy_only=False))
        for v in sorted(set(versions.tolist())):
            groups.append((int(v), "", versions == v))
    for spec in slices:
        groups += [
            (0, label, mask)
            for label, mask in _slices(joined.column(spec["column"]), spec.get("edges"), spec["column"])
        ]
    out: list[PerformanceValue] = []
    for version, name, mask in groups:
        if not mask.any():
            continue
        part = joined.filter(_arrow_mask(mask))
        for metric, value in _metrics(task, model, part, [names[n] for n in needed]).items():
            out.append(
                PerformanceValue(
                    metric, value, "realized", part.num_rows, version, name, reference.get(metric)
                )
            )
    return out


def _arrow_mask(mask: np.ndarray) -> Any:
    import pyarrow as pa

    return pa.array(mask)


def _metrics(
    task: str, model: Mapping[str, Any], part: pa.Table, columns: list[str]
) -> dict[str, float | None]:
    y = np.asarray(part.column("__label").to_numpy(zero_copy_only=False))
    classes: list[Any] = list(model.get("classes") or [])
    if task == "binary":
        scores = part.column(columns[0]).to_numpy(zero_copy_only=False).astype(np.float64)
        return performance.binary_metrics((y == classes[1]).astype(np.int64), scores)
    if task == "multiclass":
        index = {c: i for i, c in enumerate(classes)}
        predicted = np.array([index.get(v, -1) for v in part.column(columns[0]).to_pylist()])
        proba = np.column_stack([part.column(c).to_numpy(zero_copy_only=False) for c in columns[1:]])
        return performance.multiclass_metrics(
            np.array([index.get(v, -1) for v in y.tolist()]), predicted, proba
        )
    return performance.regression_metrics(
        y.astype(np.float64), part.column(columns[0]).to_numpy(zero_copy_only=False)
    )


def _slices(
    column: pa.ChunkedArray, edges: Sequence[float] | None, name: str
) -> list[tuple[str, np.ndarray]]:
    """(label, row mask) of each slice of a column: its most frequent values, or numeric bins."""
    import pyarrow.compute as pc

    if edges is not None:
        values = pc.cast(column, "float64").to_numpy(zero_copy_only=False)
        bounds = [-np.inf, *edges, np.inf]
        out = []
        for low, high in itertools.pairwise(bounds):
            label = f"{name}=[{low:g}, {high:g})"
            out.append((label, (values >= low) & (values < high)))
        return out
    counts = pc.value_counts(column.drop_null())
    ranked = sorted(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True),
        key=lambda vc: (-vc[1], str(vc[0])),
    )[:MAX_SLICE_VALUES]
    plain = column.to_pylist()
    return [(f"{name}={value}", np.array([v == value for v in plain])) for value, _ in ranked]
