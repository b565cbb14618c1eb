"""Property: the label join equals a brute-force join, with reused request ids, labels sent
before their predictions, corrected labels and labels that never match."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fti.monitoring.data import MonitoredData
from fti.monitoring.labels import join_window
from fti.serving.request_log import InferenceRecord, LoggedInputs
from tests.unit.monitoring.conftest import T0

_examples = itertools.count()
IDS = ["a", "b", "c", "d", "e"]

requests = st.lists(st.tuples(st.sampled_from(IDS), st.integers(1, 3)), min_size=1, max_size=5)
labels = st.lists(
    st.tuples(st.sampled_from([*IDS, "x", "y"]), st.integers(0, 2), st.integers(0, 1)), max_size=10
)


def _log(system: dict[str, Any], prefix: str, when: Any, items: list[tuple[str, int]], seed: int) -> None:
    """Each (id, rows) as its own flush, so a reused id is logged again (as from the server)."""
    logger = system["served"].logger
    rng = np.random.default_rng(seed)
    for request_id, rows in items:
        proba = rng.random(rows)
        inputs = LoggedInputs(
            ["cc_num", "amount", "city"],
            [[1] * rows, [10.0] * rows, ["oslo"] * rows],
            ["int64", "float64", "string"],
        )
        outputs = {
            "predict": (proba > 0.5).astype(np.int64),
            "predict_proba": np.column_stack([1 - proba, proba]),
        }
        logger.log(
            InferenceRecord(
                "fraud", "fraud", 1, prefix + request_id, when, [], np.zeros((rows, 0)), outputs, inputs
            )
        )
        logger.flush()


def _frame(prefix: str, items: list[tuple[str, int, int]]) -> pd.DataFrame:
    latest = {(prefix + i, r): y for i, r, y in items}  # one label per key in a frame
    return pd.DataFrame(
        [{"request_id": i, "row": r, "is_fraud": y} for (i, r), y in latest.items()],
        columns=["request_id", "row", "is_fraud"],
    )


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(early=requests, late=requests, first=labels, second=labels)
def test_the_label_join_equals_a_brute_force_join(system, early, late, first, second) -> None:  # type: ignore[no-untyped-def]
    project = system["project"]
    n = next(_examples)
    prefix = f"p{n}-"
    start = T0 + timedelta(days=100 + n)
    _log(system, prefix, start + timedelta(minutes=1), early, n)
    sent = [_frame(prefix, first)]
    if len(sent[0]):
        project.monitoring.log_labels("fraud", sent[0], unknown="keep")  # some before their predictions
    _log(system, prefix, start + timedelta(minutes=2), late, n + 1000)
    sent.append(_frame(prefix, second))
    if len(sent[1]):
        project.monitoring.log_labels("fraud", sent[1], unknown="keep")  # corrections win

    end = start + timedelta(hours=1)
    columns = ["request_id", "row", "predict_proba_1"]
    joined = join_window(project, MonitoredData("deployment", "fraud"), columns, start, end)
    got = (
        []
        if joined is None
        else sorted(map(tuple, joined.to_pandas()[[*columns, "__label"]].itertuples(index=False)))
    )

    log = project.feature_store.get_feature_group("fraud_inference_log").read()
    window = log[(log.timestamp >= start) & (log.timestamp < end)][columns]
    final = (
        pd.concat(sent)
        .drop_duplicates(["request_id", "row"], keep="last")
        .rename(columns={"is_fraud": "__label"})
    )
    expected = sorted(
        map(
            tuple,
            window.merge(final, on=["request_id", "row"])[[*columns, "__label"]].itertuples(index=False),
        )
    )
    assert got == expected
    assert len(window) == sum(rows for _, rows in early) + sum(
        rows for _, rows in late
    )  # reused ids kept every row
