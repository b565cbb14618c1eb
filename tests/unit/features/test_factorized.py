"""Linear scores per group row (fti.features.factorized) equal the batch data's ``x @ W.T``, row for
row and null for null: one-column and composite keys, ``max_age``, inner joins, spine rows with no
group row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fti
from fti.errors import ValidationError
from fti.features.asof import NO_ROW, AsOfIndex, micros
from fti.features.factorized import LinearScores

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def setup_view(project: fti.Project, *, composite: bool, join_type: str, max_age: timedelta | None) -> Any:
    fs = project.feature_store
    rng = np.random.default_rng(11)
    users = fs.get_or_create_feature_group("users", primary_key=["user_id"], event_time="ts")
    users.insert(
        pd.DataFrame(
            {
                "user_id": np.tile(np.arange(30), 3),
                "ts": [at(40 * v + (i % 5)) for v in range(3) for i in range(30)],
                "score": rng.normal(size=90),
                "level": [["a", "b", "c", None][i % 4] for i in range(90)],
                "count": rng.integers(0, 9, 90).astype(np.int64),
            }
        )
    )
    pairs = fs.get_or_create_feature_group("pairs", primary_key=["user_id", "item_id"], event_time="ts")
    pairs.insert(
        pd.DataFrame(
            {
                "user_id": np.repeat(np.arange(25), 4),
                "item_id": np.tile(np.arange(4), 25),
                "ts": [at(30 + (i % 7)) for i in range(100)],
                "affinity": rng.random(100),
            }
        )
    )
    items = fs.get_or_create_feature_group("items", primary_key=["item_id"])  # no event time
    items.insert(pd.DataFrame({"item_id": np.arange(3), "price": [1.5, 20.0, 7.25]}))
    events = fs.get_or_create_feature_group("events", primary_key=["event_id"], event_time="ts")
    events.insert(
        pd.DataFrame(
            {
                "event_id": np.arange(300),
                "ts": [at(-3 + i * 0.5) for i in range(300)],  # the first ones precede every user row
                "user_id": rng.integers(0, 33, 300).astype(np.int64),  # 30-32: no such user
                "item_id": rng.integers(0, 4, 300).astype(np.int64),  # 3: no such item
                "clicks": rng.poisson(3, 300).astype(np.float64),
                "label": rng.integers(0, 2, 300).astype(np.int64),
            }
        )
    )
    query = (
        events.select(["clicks", "label"])
        .join(users.select(["score", "level", "count"]), on=["user_id"], max_age=max_age, join_type=join_type)
        .join(items.select(["price"]), on=["item_id"])
    )
    if composite:
        query = query.join(pairs.select(["affinity"]), on=["user_id", "item_id"])
    fv = fs.get_or_create_feature_view(
        "events_view",
        query=query,
        labels=["label"],
        transformations={"score": "standard_scaler", "clicks": "min_max_scaler", "level": "one_hot_encoder"},
    )
    fv.create_training_data()
    return fv


@pytest.mark.parametrize(
    ("composite", "join_type", "max_age"),
    [(False, "left", None), (False, "inner", timedelta(hours=30)), (True, "left", timedelta(hours=45))],
    ids=["one-column keys", "inner join and max age", "composite key, max age"],
)
def test_scores_equal_the_batch_data_times_the_weights(
    sqlite_project: fti.Project, composite: bool, join_type: str, max_age: timedelta | None
) -> None:
    fv = setup_view(sqlite_project, composite=composite, join_type=join_type, max_age=max_age)
    names = fv.feature_names()
    weights = np.random.default_rng(5).normal(size=(3, len(names)))
    scores = LinearScores(fv, weights, None)
    start, end = at(-2), at(140)
    got = pd.concat(
        [t.to_pandas() for t in scores.stream(start, end, batch_rows=37)], ignore_index=True
    ).sort_values("event_id")
    batch = fv.get_batch_data(start, end, with_keys=True).sort_values("event_id")
    assert got["event_id"].tolist() == batch["event_id"].tolist()
    if join_type == "inner":
        assert len(batch) < 284  # rows without a user were dropped by both
    expected = batch[names].to_numpy(dtype=np.float64) @ weights.T
    actual = got[scores.columns].to_numpy() + scores.offset
    missing = np.isnan(expected)
    assert missing.any() and not missing.all()  # unmatched rows and max_age give nulls on both paths
    np.testing.assert_array_equal(np.isnan(actual), missing)
    np.testing.assert_allclose(actual[~missing], expected[~missing], rtol=1e-9, atol=1e-9)


def test_weights_of_another_width_are_refused(sqlite_project: fti.Project) -> None:
    fv = setup_view(sqlite_project, composite=False, join_type="left", max_age=None)
    with pytest.raises(ValidationError, match="inputs"):
        LinearScores(fv, np.ones((1, 3)), None)


@settings(max_examples=120, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 20)), min_size=0, max_size=30),
    probes=st.lists(st.tuples(st.integers(-1, 6), st.integers(-2, 24)), min_size=1, max_size=30),
    timeless=st.booleans(),
    max_table=st.sampled_from([None, 0]),
    spread=st.sampled_from([1, 10**12]),
)
def test_as_of_lookups_pick_the_latest_row_at_or_before(
    rows: list[tuple[int, int]],
    probes: list[tuple[int, int]],
    timeless: bool,
    max_table: int | None,
    spread: int,
) -> None:
    """Both lookups (a table of (key, time) slots, a binary search) and both ways of numbering
    keys (indexing a compact integer range, hashing) agree with the definition."""
    import pyarrow as pa

    if timeless:  # one row per key
        rows = list({key: (key, t) for key, t in rows}.values())
    unique = list(dict.fromkeys(rows))
    keys = pa.array([k * spread for k, _ in unique], pa.int64())
    times = np.array([t for _, t in unique], dtype=np.int64)
    index = AsOfIndex(keys, None if timeless else times, max_table=max_table)
    probe_keys = pa.array([None if k < 0 else k * spread for k, _ in probes], pa.int64())
    probe_times = np.array([t for _, t in probes], dtype=np.int64)
    got = index.rows(probe_keys, probe_times)
    for (key, t), row in zip(probes, got, strict=True):
        candidates = [i for i, (k, rt) in enumerate(unique) if k == key and (timeless or rt <= t)]
        best = max(candidates, key=lambda i: unique[i][1]) if candidates else NO_ROW
        assert row == best


def test_event_times_are_read_as_microseconds() -> None:
    import pyarrow as pa

    column = pa.array([datetime(2024, 1, 1, tzinfo=UTC), None], pa.timestamp("ns", tz="UTC"))
    assert micros(column).tolist() == [1_704_067_200_000_000, np.iinfo(np.int64).min]
