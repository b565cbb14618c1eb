"""Monitors of a deployment end to end: the reference, drift found only where it is, results in
``<monitor>_results``, empty windows, labels and performance, backfill and the built-in
scheduled pipeline."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sklearn import metrics

from fti.errors import NotFoundError, SchemaError, ValidationError
from tests.unit.monitoring.conftest import HOUR, T0


def test_drift_is_found_where_it_is_and_nowhere_else(system, windows) -> None:  # type: ignore[no-untyped-def]
    project = system["project"]
    mon = project.monitoring.create_monitor("drift", deployment="fraud", window="1h")
    assert mon.features == ["amount", "city"]  # untransformed, as served (not city_oslo ...)
    assert mon.predictions == ["predict", "predict_proba_1"]
    profile = mon.reference()
    assert profile.source["training_dataset_version"] == 1 and profile.source["split"] == "train"
    assert profile.rows == 2100 and profile.columns["city"].categories.keys() == {"oslo", "lima", "rome"}
    assert profile.model["task"] == "binary" and profile.model["calibration"] is not None  # type: ignore[index]

    normal = mon.run(T0, T0 + HOUR)
    assert (normal.status, normal.rows) == ("ok", 300)
    assert normal.drifted_columns == [] and not normal.dataset_drift and normal.failed_checks == []
    tests = {o.column: o.test for o in normal.outcomes if o.kind == "drift"}
    assert tests == {
        "amount": "wasserstein",
        "city": "jensenshannon",
        "predict": "jensenshannon",
        "predict_proba_1": "wasserstein",
    }

    drifted = mon.run(T0 + HOUR, T0 + 2 * HOUR)
    assert drifted.drifted_features == ["amount", "city"] and drifted.dataset_drift
    assert drifted.drift_share == 1.0
    assert {(o.column, o.test) for o in drifted.failed_checks} >= {
        ("city", "unseen_categories"),
        ("amount", "out_of_range"),
    }
    unseen = next(o for o in drifted.failed_checks if o.test == "unseen_categories")
    log = project.feature_store.get_feature_group("fraud_inference_log").read()
    hour = log[(log.timestamp >= T0 + HOUR) & (log.timestamp < T0 + 2 * HOUR)]
    assert unseen.statistic == pytest.approx((hour.city == "paris").mean())

    stored = mon.results()
    assert sorted(stored.window_start.unique()) == [T0, T0 + HOUR]
    row = stored[
        (stored.window_start == T0 + HOUR) & (stored.feature == "amount") & (stored.test == "wasserstein")
    ].iloc[0]
    assert row.drifted and row.statistic == pytest.approx(
        next(o.statistic for o in drifted.outcomes if o.column == "amount")
    )
    assert row.current_rows == 300 and row.reference_rows == 2100 and row.run_id == drifted.run_id
    assert "normalized Wasserstein" in row.reason
    frame = drifted.to_frame()
    assert {"window_start", "feature", "test", "statistic", "threshold", "p_value", "drifted"} <= set(
        frame.columns
    )
    runs = mon.runs()
    assert [(r.window_start, r.status, r.dataset_drift) for r in runs] == [
        (T0 + HOUR, "ok", True),
        (T0, "ok", False),
    ]
    assert runs[0].summary["columns"]["amount"]["drifted"] is True
    again = mon.run(T0 + HOUR, T0 + 2 * HOUR)  # the same window again: its rows are replaced
    assert len(mon.results(T0 + HOUR, T0 + 2 * HOUR)) == len(again.to_frame())
    assert len(project.backends.artifacts.list("monitoring/default/drift/")) == 1  # profiled once


def test_an_empty_window_is_no_data_never_drift(system, windows) -> None:  # type: ignore[no-untyped-def]
    mon = system["project"].monitoring.create_monitor("empty", deployment="fraud", window="1h")
    result = mon.run(T0 + 5 * HOUR, T0 + 6 * HOUR)
    assert (result.status, result.rows, result.dataset_drift, result.drifted_columns) == (
        "no_data",
        0,
        False,
        [],
    )
    assert {o.reason for o in result.outcomes} == {"no values in the window"}
    assert result.performance == []
    stored = mon.results()
    assert set(stored.status) == {"no_data"} and not stored.drifted.any()
    assert mon.runs()[0].status == "no_data"


def test_labels_give_realized_performance_next_to_the_estimate(system, windows) -> None:  # type: ignore[no-untyped-def]
    project = system["project"]
    monitoring = project.monitoring
    mon = monitoring.create_monitor(
        "perf", deployment="fraud", window="1h", slices=["city", {"amount": [50, 100]}]
    )
    log = project.feature_store.get_feature_group("fraud_inference_log").read()
    hour = log[(log.timestamp >= T0) & (log.timestamp < T0 + HOUR)].reset_index(drop=True)
    truth = (
        project.feature_store.get_feature_group("cards")
        .read()
        .set_index("cc_num")
        .loc[hour.cc_num, "is_fraud"]
        .to_numpy()
        .copy()
    )
    before = mon.run(T0, T0 + HOUR)
    assert before.metric("roc_auc", "realized") is None and before.metric("roc_auc", "estimated") is not None

    labels = pd.DataFrame({"request_id": hour.request_id, "row": hour.row, "is_fraud": truth})
    result = monitoring.log_labels("fraud", labels)
    assert (result.join, result.matched, result.unknown, result.written) == ("request_id", 300, 0, 300)
    after = mon.run(T0, T0 + HOUR)
    proba = hour.predict_proba_1.to_numpy()
    assert after.metric("roc_auc") == pytest.approx(metrics.roc_auc_score(truth, proba))
    assert after.metric("accuracy") == pytest.approx(metrics.accuracy_score(truth, proba > 0.5))
    assert after.metric("log_loss") == pytest.approx(metrics.log_loss(truth, proba))
    assert after.metric("roc_auc", model_version=1) == after.metric("roc_auc")
    rome = (hour.city == "rome").to_numpy()
    assert after.metric("roc_auc", slice="city=rome") == pytest.approx(
        metrics.roc_auc_score(truth[rome], proba[rome])
    )
    mid = ((hour.amount >= 50) & (hour.amount < 100)).to_numpy()
    assert after.metric("accuracy", slice="amount=[50, 100)") == pytest.approx(
        metrics.accuracy_score(truth[mid], proba[mid] > 0.5)
    )
    estimated = after.metric("roc_auc", "estimated")
    assert abs(estimated - after.metric("roc_auc")) < 0.1  # type: ignore[operator]
    stored = mon.results(T0, T0 + HOUR)
    realized = stored[
        (stored.kind == "performance")
        & (stored.test == "realized")
        & (stored.feature == "roc_auc")
        & (stored.slice == "")
    ]
    assert sorted(realized.model_version) == [0, 1]

    # a corrected label replaces the earlier one; the same key twice in one frame is refused
    flipped = labels.head(1).assign(is_fraud=1 - truth[:1])
    monitoring.log_labels("fraud", flipped)
    truth[0] = 1 - truth[0]
    assert mon.run(T0, T0 + HOUR).metric("accuracy") == pytest.approx(
        metrics.accuracy_score(truth, proba > 0.5)
    )
    with pytest.raises(ValidationError, match="appear more than once"):
        monitoring.log_labels("fraud", pd.concat([flipped, flipped]))


def test_labels_for_unknown_ids_are_counted_and_never_silently_dropped(system, windows) -> None:  # type: ignore[no-untyped-def]
    project = system["project"]
    known = windows["drifted"][:3]
    frame = pd.DataFrame({"request_id": [*known, "nope-1", "nope-2"], "is_fraud": [0, 1, 0, 1, 1]})
    group = project.feature_store.get_feature_group("fraud_labels")
    commits = len(group.commits())
    with pytest.raises(ValidationError, match=r"2 of 5 label\(s\) match no logged prediction.*nope-1"):
        project.monitoring.log_labels("fraud", frame)
    assert len(group.commits()) == commits  # nothing written
    skipped = project.monitoring.log_labels("fraud", frame, unknown="skip")
    assert (skipped.matched, skipped.unknown, skipped.written) == (3, 2, 3)
    assert skipped.unknown_examples == [
        {"request_id": "nope-1", "row": 0},
        {"request_id": "nope-2", "row": 0},
    ]
    kept = project.monitoring.log_labels("fraud", frame, unknown="keep")
    assert (kept.unknown, kept.written) == (2, 5)
    with pytest.raises(SchemaError, match="holds string values, but the model's label 'is_fraud' is int64"):
        project.monitoring.log_labels("fraud", frame.assign(is_fraud=["yes"] * 5), unknown="keep")
    with pytest.raises(SchemaError, match="need the column"):
        project.monitoring.log_labels("fraud", pd.DataFrame({"cc_num": [1], "is_fraud": [1]}))
    with pytest.raises(ValidationError, match="no rows"):
        project.monitoring.log_labels("fraud", frame.head(0))
    with pytest.raises(NotFoundError, match="no deployment or feature group named 'nothing'"):
        project.monitoring.log_labels("nothing", frame)
    with pytest.raises(ValidationError, match="unknown must be one of"):
        project.monitoring.log_labels("fraud", frame, unknown="ignore")


def test_backfill_runs_each_window(system, windows) -> None:  # type: ignore[no-untyped-def]
    mon = system["project"].monitoring.create_monitor("filled", deployment="fraud", window="30m")
    results = mon.backfill(T0 - timedelta(minutes=15), T0 + 2 * HOUR)
    assert [(r.window_start, r.window_end) for r in results][:2] == [
        (T0 - timedelta(minutes=15), T0),
        (T0, T0 + timedelta(minutes=30)),
    ]
    assert len(results) == 5 and results[-1].window_end == T0 + 2 * HOUR
    assert [r.rows for r in results] == [0, 300, 0, 300, 0]
    assert {r.trigger for r in mon.runs()} == {"backfill"}
    assert mon.last_window(T0 + timedelta(minutes=40)) == (T0, T0 + timedelta(minutes=30))


def test_a_scheduled_monitor_runs_as_a_built_in_pipeline(system, windows) -> None:  # type: ignore[no-untyped-def]
    project = system["project"]
    mon = project.monitoring.create_monitor("hourly", deployment="fraud", window="1h", schedule="5 * * * *")
    assert mon.pipeline == "monitor_hourly"
    pipeline = project.pipelines.get("monitor_hourly")
    assert (pipeline.kind, pipeline.schedule.cron, pipeline.source_path) == (  # type: ignore[union-attr]
        "monitoring",
        "5 * * * *",
        "module:fti.monitoring.pipeline",
    )
    run = project.pipelines.run(
        "monitor_hourly", start=T0 + timedelta(minutes=5), end=T0 + HOUR + timedelta(minutes=5)
    )
    assert run.status == "succeeded", project.pipelines.logs(run.id)
    assert (
        "monitor hourly: window [2026-03-02T00:00:00+00:00, 2026-03-02T01:00:00+00:00) ok, 300 rows"
        in (project.pipelines.logs(run.id)["stdout"])
    )
    recorded = mon.runs()[0]
    assert (recorded.trigger, recorded.window_start, recorded.rows) == ("schedule", T0, 300)
    mon.delete()
    assert project.pipelines.get("monitor_hourly").paused
    with pytest.raises(NotFoundError, match="monitor 'hourly' not found"):
        project.monitoring.get_monitor("hourly")
    again = project.monitoring.create_monitor("hourly", deployment="fraud", window="1h", schedule="5 * * * *")
    assert not project.pipelines.get("monitor_hourly").paused and again.pipeline == "monitor_hourly"
    assert [m.name for m in project.monitoring.list_monitors()] == sorted(
        m.name for m in project.monitoring.list_monitors()
    )
