"""A small credit data set with known flaws, and three models of it, for the evaluation tests.

Rows: ``x1`` decides the label ``y``, except in segment 3 (``region == "west"``, 10% of the rows)
where the relation is inverted; ``x2`` carries no signal about ``y`` but is higher in group ``b``
(a proxy of the sensitive attribute ``group``). ``region`` and ``group`` live only in the feature
group, not in the feature view (the models never see them).

Models (versions of ``loan``): 1 ``good`` (gradient boosting: learns the segment, fair), 2
``slice_bad`` (linear: good overall, wrong on segment 3), 3 ``biased`` (linear, trained on labels
that favour high ``x2``: selects group ``b`` far more often).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import fti

REGIONS = np.array(["north", "south", "east", "west"])
GOOD, SLICE_BAD, BIASED = 1, 2, 3


def frame(n: int = 2000, seed: int = 3, start: str = "2026-01-01", first_id: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segment = rng.choice(4, n, p=[0.3, 0.3, 0.3, 0.1])
    group = rng.choice(np.array(["a", "b"]), n)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n) + np.where(group == "b", 1.5, 0.0)
    noise = rng.normal(scale=0.5, size=n)
    y = np.where(segment == 3, -x1 + noise > 0, x1 + noise > 0).astype(np.int64)
    return pd.DataFrame(
        {
            "id": np.arange(first_id, first_id + n, dtype=np.int64),
            "ts": pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n), unit="min"),
            "x1": x1,
            "x2": x2,
            "segment": segment.astype(np.int64),
            "region": REGIONS[segment],
            "group": group,
            "y": y,
        }
    )


@dataclass
class Loans:
    project: fti.Project
    fv: Any
    td: int
    data: pd.DataFrame
    models: dict[int, Any]


def build(project: fti.Project) -> Loans:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    fs = project.feature_store
    fg = fs.get_or_create_feature_group("loans", 1, primary_key=["id"], event_time="ts")
    data = frame()
    fg.insert(data)
    fv = fs.get_or_create_feature_view(
        "loans",
        1,
        query=fg.select(["x1", "x2", "segment", "y"]),
        labels=["y"],
        transformations={"x1": "standard_scaler"},
    )
    X_train, _, y_train, _ = fv.train_test_split(test_size=0.5, seed=1)
    td = fv.last_training_dataset_version
    favoured = (y_train.to_numpy() | (X_train["x2"].to_numpy() > 0.75)).astype(np.int64)
    models = {
        GOOD: HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X_train, y_train),
        SLICE_BAD: LogisticRegression().fit(X_train, y_train),
        BIASED: LogisticRegression().fit(X_train, favoured),
    }
    mr = project.model_registry
    for version, model in models.items():
        mv = mr.register(
            "loan", model, feature_view=fv, training_dataset_version=td, input_example=X_train.head(3)
        )
        assert mv.version == version
    return Loans(project, fv, td, data, models)


def split_rows(loans: Loans) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """The test split: transformed inputs, labels, and the source rows (``region``, ``group``) in
    the same order."""
    from fti.features import training_data

    X, y = loans.fv.get_training_data(loans.td, split="test")
    stored = training_data.read(loans.fv, loans.fv.training_dataset(loans.td)).to_pandas()
    ids = stored.loc[stored[training_data.SPLIT_COLUMN] == "test", "id"]
    source = loans.data.set_index("id").loc[ids.to_numpy()].reset_index()
    return X, y, source
