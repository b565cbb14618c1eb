"""Fixtures of the feature tests: a transactions group, and three joined groups for feature views."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti
from tests.unit.features._data import at


@pytest.fixture
def transactions(project: fti.Project) -> fti.features.feature_group.FeatureGroup:  # type: ignore[name-defined]
    return project.feature_store.get_or_create_feature_group(
        "transactions", version=1, primary_key=["cc_num"], event_time="ts", online_enabled=True
    )


@pytest.fixture
def groups(project: fti.Project) -> dict[str, Any]:
    fs = project.feature_store
    tx = fs.get_or_create_feature_group(
        "transactions", primary_key=["tid"], event_time="ts", online_enabled=True
    )
    profiles = fs.get_or_create_feature_group(
        "profiles", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    windows = fs.get_or_create_feature_group("windows", primary_key=["cc_num"], online_enabled=True)
    n = 40
    rng = np.random.default_rng(7)
    tx.insert(
        pd.DataFrame(
            {
                "tid": np.arange(n),
                "ts": [at(10 + i) for i in range(n)],
                "cc_num": np.arange(n) % 8,
                "amount": rng.normal(50, 20, n).round(3),
                "category": [["food", "travel", "misc"][i % 3] for i in range(n)],
                "is_fraud": (np.arange(n) % 5 == 0).astype(np.int64),
            }
        )
    )
    profiles.insert(
        pd.DataFrame(
            {
                "cc_num": list(range(8)) * 2,
                "ts": [at(0)] * 8 + [at(5)] * 8,
                "age": rng.integers(18, 90, 16).astype(float),
                "city": [["paris", "rome", "oslo"][i % 3] for i in range(16)],
                "score": rng.normal(0, 1, 16),
            }
        )
    )
    windows.insert(
        pd.DataFrame(
            {"cc_num": range(8), "spend": rng.uniform(0, 1000, 8), "n_tx": [0, 1, 3, 5, 7, 10, 12, 2]}
        )
    )
    return {"tx": tx, "profiles": profiles, "windows": windows}
