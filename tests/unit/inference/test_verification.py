"""Converted scorers are verified on real rows (training data, batch input), not only on the few
rows of the input example: a conversion that agrees on the example but not on the data is refused.

The reproduction: a feature of epoch seconds (about 1.7e9) and a model that splits on it. A
float32 ONNX graph rounds such values to multiples of 128 seconds, so rows within a minute of the
split land on the wrong side; the example's rows are far from the split and agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

import fti
from fti.inference.cache import ScorerCache
from fti.inference.native import native_predict
from fti.inference.selection import get_scorer
from fti.inference.verification import agrees, training_rows, verification_sample

N = 3_000
SPLIT = 1_500
T0 = datetime(2024, 1, 1, tzinfo=UTC)
OPENED0 = 1_700_000_000.0  # a multiple of 128: exact in float32
EXAMPLE_K = [0, 128, 2560, 2816, 256]  # exact in float32 and far from the split at SPLIT


def _frame() -> pd.DataFrame:
    k = np.arange(N)
    return pd.DataFrame(
        {
            "id": k,
            "ts": [T0 + timedelta(seconds=int(i)) for i in k],
            "opened_s": OPENED0 + k,  # epoch seconds of an account opening
            "amount": np.random.default_rng(0).normal(50, 10, N),
            "label": (k >= SPLIT).astype(np.int64),
        }
    )


def _reference(model: Any, X: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.asarray(value) for name, value in native_predict(model, X).items()}


def test_a_conversion_agreeing_on_the_example_but_not_on_real_rows_is_refused() -> None:
    data = _frame()
    X = data[["opened_s", "amount"]].to_numpy()
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, data["label"])
    reference = _reference(model, X)
    example = np.column_stack([OPENED0 + np.asarray(EXAMPLE_K, float), np.full(5, 50.0)])

    on_example = get_scorer(model, sample=example, prefer="converted")
    assert on_example.kind == "onnx" and np.dtype(on_example.dtype) == np.float32
    wrong = (on_example.predict(X)["predict"] != reference["predict"]).sum()
    assert wrong > 0 and not agrees(on_example.predict(X), reference)  # the lossy graph is wrong

    on_real_rows = get_scorer(model, sample=np.concatenate([X, example]))  # the training rows
    assert agrees(on_real_rows.predict(X), reference)  # float64 graph or native, never the float32 one
    assert np.dtype(getattr(on_real_rows, "dtype", np.float64)) == np.float64


@pytest.fixture
def registered(project: fti.Project) -> tuple[Any, Any, pd.DataFrame]:
    """A model registered from a feature view and training dataset, with a 5-row example far
    from its split."""
    fs = project.feature_store
    accounts = fs.get_or_create_feature_group("accounts", primary_key=["id"], event_time="ts")
    data = _frame()
    accounts.insert(data)
    fv = fs.get_or_create_feature_view(
        "accounts_view", query=accounts.select(["opened_s", "amount", "label"]), labels=["label"]
    )
    td_version, _ = fv.create_training_data()
    x, y = fv.get_training_data(td_version)
    names = fv.feature_names()
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x[names], y)
    example = pd.DataFrame({"opened_s": OPENED0 + np.asarray(EXAMPLE_K, float), "amount": 50.0})
    mv = project.model_registry.register(
        "opened", model, feature_view=fv, training_dataset_version=td_version, input_example=example
    )
    project.model_registry.set_alias("opened", mv.version, "production")
    return mv, model, x[names]


def test_the_verification_sample_is_the_models_training_data(
    project: fti.Project, registered: tuple[Any, Any, pd.DataFrame]
) -> None:
    mv, _, x = registered
    sample = verification_sample(mv)
    assert sample.shape == (N + len(EXAMPLE_K), 2)  # all 3,000 training rows, then the example
    np.testing.assert_array_equal(sample[:N], x.to_numpy())
    np.testing.assert_array_equal(sample[N:, 0], OPENED0 + np.asarray(EXAMPLE_K, float))
    spread = training_rows(mv, 100)
    assert spread is not None and len(spread) == 100
    assert (spread[0, 0], spread[-1, 0]) == (OPENED0, OPENED0 + N - 1)  # evenly over the dataset
    batch = x.to_numpy()[:10] + 0.5
    topped_up = verification_sample(mv, batch)
    np.testing.assert_array_equal(topped_up[:10], batch)  # the input at hand comes first
    assert len(topped_up) == 10 + N + len(EXAMPLE_K)  # short input: topped up with training rows


def test_serving_and_batch_refuse_the_lossy_conversion(
    project: fti.Project, registered: tuple[Any, Any, pd.DataFrame]
) -> None:
    from fti.serving.repository import load_model

    mv, model, x = registered
    X = x.to_numpy()
    reference = _reference(model, X)
    built = ScorerCache.at_home(project.settings.home).build(mv, mv.load(), prefer="converted")
    assert agrees(built.predict(X), reference) and np.dtype(built.dtype) == np.float64

    spec = project.serving.deploy("opened", model="opened@production", scorer="converted").spec
    served = load_model(project, spec).predict(X)
    assert agrees(served, reference)

    # a batch job whose first batch (16 rows, far from the split) alone would pass the float32
    # graph is verified on training rows too, so every prediction is the native one
    result = fti.batch.score(project, "opened", output="opened_preds", chunk_rows=16, prefer="converted")
    preds = result.feature_group.read().sort_values("id")
    assert result.rows == N
    np.testing.assert_array_equal(preds["prediction"].to_numpy(), reference["predict"])
    np.testing.assert_allclose(
        preds[["proba_0", "proba_1"]].to_numpy(), reference["predict_proba"], rtol=0, atol=1e-5
    )
