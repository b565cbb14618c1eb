"""Tiny training data and fitted models shared by the registry tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def xy() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"amount": rng.normal(size=60), "age": rng.normal(size=60), "hour": rng.normal(size=60)})
    y = (X["amount"] + 0.5 * X["age"] > 0).astype(np.int64).to_numpy()
    return X, y


@pytest.fixture(scope="session")
def classifier(xy: tuple[pd.DataFrame, np.ndarray]):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = xy
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
