"""The enriched deployment of the serving benchmark: the same model task with its 20 features
looked up online from two feature groups of 10 features each (issue 21's enrichment figure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

import fti

ENTITIES = 10_000
KEY = "id"


def build(project: fti.Project, X: np.ndarray, y: np.ndarray, features: list[str]) -> str:
    """Two online groups holding ``X``'s first ``ENTITIES`` rows (10 features each), a view
    joining them with the label, a HistGradientBoosting model trained on its training data and
    registered with it; returns the model's name (``hgb_enriched``)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    n = min(ENTITIES, len(X))
    ids = np.arange(n, dtype=np.int64)
    when = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=int(i)) for i in ids]
    half = len(features) // 2
    fs = project.feature_store
    first = pd.DataFrame({KEY: ids, "ts": when, **{f: X[:n, j] for j, f in enumerate(features[:half])}})
    first["label"] = y[:n]
    second = pd.DataFrame(
        {KEY: ids, "ts": when, **{f: X[:n, half + j] for j, f in enumerate(features[half:])}}
    )
    groups = []
    for name, frame in (("bench_a", first), ("bench_b", second)):
        group = fs.get_or_create_feature_group(name, primary_key=[KEY], event_time="ts", online_enabled=True)
        group.insert(frame)
        groups.append(group)
    view = fs.get_or_create_feature_view(
        "bench_view",
        query=groups[0].select([*features[:half], "label"]).join(groups[1].select(features[half:]), on=[KEY]),
        labels=["label"],
    )
    view.create_training_data()
    x, labels = view.get_training_data(1)
    model = HistGradientBoostingClassifier(random_state=0).fit(x, np.ravel(labels))
    mv = project.model_registry.register(
        "hgb_enriched", model, feature_view=view, training_dataset_version=1, input_example=x.head(50)
    )
    project.model_registry.set_alias("hgb_enriched", mv.version, "production")
    return "hgb_enriched"


def body(entity: int = 123) -> dict[str, Any]:
    """A single-row request of an enriched deployment: the key only."""
    return {"inputs": [{"name": KEY, "shape": [1], "datatype": "INT64", "data": [entity]}]}
