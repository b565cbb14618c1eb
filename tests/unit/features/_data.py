"""Data and helpers shared by the feature tests (the fixtures using them are in conftest.py)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

import fti

T0 = datetime(2024, 1, 1, tzinfo=UTC)


TRANSFORMS = {
    "amount": "standard_scaler",
    "category": "one_hot_encoder",
    "p_age": "min_max_scaler",
    "p_city": "label_encoder",
    "spend": "log1p",
    "n_tx": "bucketize(1, 5, 10)",
    "p_score": "robust_scaler",
}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def frame(keys: list[int], hours: list[int], amounts: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cc_num": keys,
            "ts": [T0 + timedelta(hours=h) for h in hours],
            "amount": amounts,
            "category": [f"c{k}" for k in keys],
        }
    )


def make_view(project: fti.Project, groups: dict[str, Any], name: str = "fraud", **kwargs: Any) -> Any:
    query = (
        groups["tx"]
        .select(["cc_num", "amount", "category", "is_fraud"])
        .join(
            groups["profiles"].select_all(include_primary_key=False, include_event_time=False),
            on=["cc_num"],
            prefix="p_",
        )
        .join(
            groups["windows"].select_all(include_primary_key=False, include_event_time=False), on=["cc_num"]
        )
    )
    kwargs.setdefault("transformations", TRANSFORMS)
    return project.feature_store.get_or_create_feature_view(name, query=query, labels=["is_fraud"], **kwargs)


def bits(value: Any) -> Any:
    """Floats by their bit pattern, so equality means bit-identical."""
    if isinstance(value, (float, np.floating)):
        return struct.pack("<d", float(value))
    return value.item() if hasattr(value, "item") else value


def assert_nothing_written(fg) -> None:
    assert fg.commits() == []
    assert fg.project.backends.offline.version(fg.table_name) is None


def assert_no_view(project: fti.Project) -> None:
    assert project.feature_store.list_feature_views() == []
