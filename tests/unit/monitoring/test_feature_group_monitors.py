"""Monitors of feature groups: batch predictions against the model's training data (prediction
drift, CBPE, labels joined by key and event time), and any group against a window of itself."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

import fti
from tests.unit.monitoring.conftest import T0

DAY = timedelta(days=1)


def test_batch_predictions_monitor_with_labels_by_key(system) -> None:  # type: ignore[no-untyped-def]
    project = system["project"]
    start, end = T0 - timedelta(days=30), T0 - timedelta(days=20)  # a transaction every 10 minutes
    scored = fti.batch.score(
        project, "fraud@production", start_time=start, end_time=end, output="fraud_predictions"
    )
    assert scored.rows > 1000
    mon = project.monitoring.create_monitor(
        "batch", feature_group="fraud_predictions", model="fraud@production", window="1d"
    )
    assert (mon.features, mon.predictions) == (
        [],
        ["predict", "predict_proba_1"],
    )  # read as prediction, proba_1
    day = mon.run(start, start + DAY)
    assert day.status == "ok" and day.rows == 144
    assert {o.column for o in day.outcomes if o.kind == "drift"} == {"predict", "predict_proba_1"}
    assert day.metric("roc_auc", "estimated") is not None and day.metric("roc_auc") is None

    predictions = project.feature_store.get_feature_group("fraud_predictions").read()
    cards = project.feature_store.get_feature_group("cards").read()
    labelled = predictions.merge(cards[["cc_num", "ts", "is_fraud"]], on=["cc_num", "ts"])
    result = project.monitoring.log_labels("fraud_predictions", labelled[["cc_num", "ts", "is_fraud"]])
    assert (result.join, result.matched, result.unknown) == ("keys", len(predictions), 0)
    daily = mon.backfill(start, end)
    assert len(daily) == 10
    for window in daily:
        rows = labelled[(labelled.ts >= window.window_start) & (labelled.ts < window.window_end)]
        expected = metrics.roc_auc_score(rows.is_fraud, rows.proba_1)
        assert window.metric("roc_auc") == pytest.approx(expected)
        assert window.metric("roc_auc", "estimated") == pytest.approx(expected, abs=0.1)


def test_any_group_against_a_window_of_itself(system) -> None:  # type: ignore[no-untyped-def]
    project = system["project"]
    cards = project.feature_store.get_feature_group("cards")
    first = cards.read()["ts"].min()
    mon = project.monitoring.create_monitor(
        "cards_window",
        feature_group="cards",
        window="1d",
        reference=(first, first + 7 * DAY),
        tests={"amount": ["ks", "psi"]},
    )
    assert mon.model is None and mon.features == ["amount", "city", "is_fraud"] and mon.predictions == []
    assert mon.reference().source == {
        "kind": "window",
        "start": first.isoformat(),
        "end": (first + 7 * DAY).isoformat(),
    }
    later = mon.run(first + 8 * DAY, first + 9 * DAY)
    tests = [(o.column, o.test) for o in later.outcomes if o.kind == "drift"]
    assert tests == [
        ("amount", "ks"),
        ("amount", "psi"),
        ("city", "jensenshannon"),
        ("is_fraud", "jensenshannon"),
    ]
    rows = cards.read()
    ref = rows[(rows.ts >= first) & (rows.ts < first + 7 * DAY)].amount.to_numpy()
    cur = rows[(rows.ts >= first + 8 * DAY) & (rows.ts < first + 9 * DAY)].amount.to_numpy()
    from scipy import stats

    ks = next(o for o in later.outcomes if o.test == "ks")
    expected = stats.ks_2samp(ref, cur)
    assert (ks.statistic, ks.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    assert later.performance == []
    assert np.isfinite(next(o.statistic for o in later.outcomes if o.test == "psi"))
    assert isinstance(later.to_frame(), pd.DataFrame)
