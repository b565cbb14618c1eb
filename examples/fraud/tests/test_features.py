"""Fraud feature engineering against brute-force pandas computations on small samples."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from examples.fraud.features import (
    LOOKBACK,
    PUBLISH_DELAY,
    WINDOW_COLUMNS,
    WINDOWS,
    amount_bin,
    category_code,
    haversine_km,
    live_transaction_features,
    transaction_features,
    window_features,
)
from examples.fraud.generator import CATEGORIES, DATA_START, generate

SPANS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    generated = generate(n_cards=25, days=12, seed=2)
    return generated.profiles, generated.transactions


def brute_force_windows(tx: pd.DataFrame) -> pd.DataFrame:
    """Row by row: the card's transactions in [t - window, t]."""
    rows = []
    for row in tx.itertuples():
        card = tx[tx["cc_num"] == row.cc_num]
        out = {"cc_num": row.cc_num, "datetime": row.datetime + PUBLISH_DELAY}
        for name, span in SPANS.items():
            hits = card[(card["datetime"] >= row.datetime - span) & (card["datetime"] <= row.datetime)]
            out[f"tx_count_{name}"] = len(hits)
            out[f"amount_sum_{name}"] = hits["amount"].sum()
            out[f"amount_mean_{name}"] = hits["amount"].mean()
        rows.append(out)
    return pd.DataFrame(rows).sort_values(["datetime", "cc_num"], kind="stable").reset_index(drop=True)


def test_window_aggregates_equal_brute_force(sample: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    tx = sample[1]
    got = window_features(tx)
    expected = brute_force_windows(tx)
    assert list(got.columns) == list(WINDOW_COLUMNS)
    assert len(got) == len(tx)
    pd.testing.assert_frame_equal(
        got, expected[list(WINDOW_COLUMNS)], check_exact=False, rtol=1e-12, check_dtype=False
    )
    assert got["tx_count_7d"].max() > got["tx_count_1d"].max() > 1


def test_window_boundaries_are_inclusive_and_per_card() -> None:
    t0 = pd.Timestamp(DATA_START)
    tx = pd.DataFrame(
        {
            "cc_num": [1, 1, 1, 2, 1],
            "datetime": [
                t0,
                t0 + pd.Timedelta(hours=1),
                t0 + pd.Timedelta(hours=1, microseconds=1),
                t0 + pd.Timedelta(minutes=30),
                t0 + pd.Timedelta(days=1, hours=1),
            ],
            "amount": [10.0, 20.0, 40.0, 1000.0, 5.0],
        }
    )
    got = window_features(tx)
    assert (got["datetime"] - PUBLISH_DELAY).tolist() == sorted(tx["datetime"])  # published just after
    got["datetime"] -= PUBLISH_DELAY
    got = got.set_index(["cc_num", "datetime"])
    at_1h = got.loc[(1, t0 + pd.Timedelta(hours=1))]
    assert at_1h["tx_count_1h"] == 2 and at_1h["amount_sum_1h"] == 30.0  # exactly 1 h back is included
    just_after = got.loc[(1, t0 + pd.Timedelta(hours=1, microseconds=1))]
    assert just_after["tx_count_1h"] == 2 and just_after["amount_sum_1h"] == 60.0
    assert just_after["amount_mean_1h"] == 30.0
    next_day = got.loc[(1, t0 + pd.Timedelta(days=1, hours=1))]
    assert (next_day["tx_count_1h"], next_day["tx_count_1d"], next_day["tx_count_7d"]) == (1, 3, 4)
    assert got.loc[(2, t0 + pd.Timedelta(minutes=30))]["amount_sum_7d"] == 1000.0  # other card unaffected


def test_transaction_features_equal_brute_force(sample: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    profiles, tx = sample
    got = transaction_features(tx, profiles)
    assert len(got) == len(tx)
    homes = profiles.set_index("cc_num")
    for row in got.sample(60, random_state=0).itertuples():
        card = tx[(tx["cc_num"] == row.cc_num) & (tx["datetime"] < row.datetime)]
        if card.empty:
            assert row.seconds_since_prev == LOOKBACK.total_seconds() and row.km_from_prev == 0.0
        else:
            prev = card.iloc[-1]
            assert row.seconds_since_prev == pytest.approx((row.datetime - prev["datetime"]).total_seconds())
            assert row.km_from_prev == pytest.approx(haversine_km(row.lat, row.lon, prev["lat"], prev["lon"]))
        home = homes.loc[row.cc_num]
        assert row.km_from_home == pytest.approx(
            haversine_km(row.lat, row.lon, home["home_lat"], home["home_lon"])
        )
    assert got["amount_bin"].tolist() == amount_bin(got["amount"]).tolist()
    assert got["category_code"].tolist() == [CATEGORIES.index(c) for c in got["category"]]


def test_an_incremental_window_equals_the_full_backfill(sample: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    profiles, tx = sample
    start, end = DATA_START + timedelta(days=9), DATA_START + timedelta(days=11)
    history = tx[(tx["datetime"] >= pd.Timestamp(start - LOOKBACK)) & (tx["datetime"] < pd.Timestamp(end))]
    full_w = window_features(tx, start, end)
    full_t = transaction_features(tx, profiles, start, end)
    pd.testing.assert_frame_equal(window_features(history, start, end), full_w)
    pd.testing.assert_frame_equal(transaction_features(history, profiles, start, end), full_t)
    assert len(full_w) > 0 and full_w["datetime"].min() >= pd.Timestamp(start)
    assert (full_w["datetime"] - PUBLISH_DELAY).max() < pd.Timestamp(end)


def test_a_gap_longer_than_the_lookback_reads_as_the_lookback() -> None:
    t0 = pd.Timestamp(DATA_START)
    tx = pd.DataFrame(
        {
            "tid": ["a", "b"],
            "cc_num": [1, 1],
            "datetime": [t0, t0 + pd.Timedelta(days=8)],
            "amount": [1.0, 2.0],
            "category": ["gas", "gas"],
            "lat": [40.0, 10.0],
            "lon": [-70.0, -70.0],
            "is_fraud": [0, 0],
        }
    )
    profiles = pd.DataFrame({"cc_num": [1], "home_lat": [40.0], "home_lon": [-70.0]})
    got = transaction_features(tx, profiles)
    assert got["seconds_since_prev"].tolist() == [LOOKBACK.total_seconds()] * 2
    assert got["km_from_prev"].tolist() == [0.0, 0.0]
    assert got["km_from_home"].iloc[1] == pytest.approx(3335.8, abs=1.0)  # 30 degrees of latitude


def test_haversine_and_bins_known_values() -> None:
    assert haversine_km(40.71, -74.01, 34.05, -118.24) == pytest.approx(3936, abs=5)  # New York - Los Angeles
    assert haversine_km(10.0, 20.0, 10.0, 20.0) == 0.0
    assert category_code(["grocery", "gas", "jewelry", "unknown"]).tolist() == [0, 2, 8, -1]
    assert amount_bin([0.5, 9.99, 10.0, 99.0, 100.0, 999.99, 1000.0, 1e6]).tolist() == [
        0,
        0,
        1,
        3,
        4,
        6,
        7,
        7,
    ]


def test_live_features_equal_the_pipeline_row(sample: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """No skew: a live transaction gets the features the feature pipeline computes for it."""
    profiles, tx = sample
    batch = transaction_features(tx, profiles)
    homes = profiles.set_index("cc_num")
    for i in np.random.default_rng(0).choice(len(batch), 25, replace=False):
        row = batch.iloc[i]
        earlier = batch[(batch["cc_num"] == row["cc_num"]) & (batch["datetime"] < row["datetime"])]
        previous = None if earlier.empty else earlier.iloc[-1].to_dict()
        live = live_transaction_features(
            row[["amount", "category", "lat", "lon", "datetime"]].to_dict(),
            previous,
            homes.loc[row["cc_num"]].to_dict(),
        )
        for name, value in live.items():
            assert value == (row[name] if isinstance(value, str) else pytest.approx(row[name], rel=1e-12)), (
                name
            )
    assert set(WINDOWS) == set(SPANS)
