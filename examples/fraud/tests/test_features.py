"""Fraud feature engineering against brute-force pandas computations on small samples."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from examples.fraud.features import (
    LOOKBACK,
    PUBLISH_DELAY,
    TRANSACTION_COLUMNS,
    WINDOW_COLUMNS,
    WINDOWS,
    amount_bin,
    category_code,
    haversine_km,
    movement,
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
    aggregates = list(expected.columns)
    pd.testing.assert_frame_equal(got[aggregates], expected, check_exact=False, rtol=1e-12, check_dtype=False)
    assert got["tx_count_7d"].max() > got["tx_count_1d"].max() > 1
    # the card's latest transaction as of the row: the transaction itself
    own = tx.set_index(["cc_num", "datetime"]).loc[
        list(zip(got["cc_num"], got["last_datetime"], strict=True))
    ]
    assert got["last_lat"].tolist() == own["lat"].tolist() and got["last_lon"].tolist() == own["lon"].tolist()
    assert (got["datetime"] - got["last_datetime"] == PUBLISH_DELAY).all()


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
            "lat": [40.0, 41.0, 42.0, 43.0, 44.0],
            "lon": [-70.0] * 5,
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


def joined(tx: pd.DataFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    """Each transaction with the card's window row as of its time and its profile, as the feature
    view's point-in-time join gives them (the window row is published just after its transaction)."""
    rows = transaction_features(tx)
    windows = window_features(tx).sort_values("datetime")
    out = pd.merge_asof(rows.sort_values("datetime"), windows, on="datetime", by="cc_num")
    return out.merge(profiles[["cc_num", "home_lat", "home_lon"]], on="cc_num", how="left")


def _movement(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    columns = ["datetime", "lat", "lon", "last_datetime", "last_lat", "last_lon", "home_lat", "home_lon"]
    arrays = [rows[c].to_numpy() for c in columns]
    arrays[0], arrays[3] = (
        rows[c].dt.tz_convert(None).to_numpy("datetime64[us]") for c in ("datetime", "last_datetime")
    )
    return movement(*arrays)


def test_on_demand_features_of_the_joined_rows_equal_brute_force(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    profiles, tx = sample
    rows = joined(tx, profiles)
    assert list(transaction_features(tx).columns) == list(TRANSACTION_COLUMNS) and len(rows) == len(tx)
    seconds, km_prev, km_home = _movement(rows)
    homes = profiles.set_index("cc_num")
    for i in np.random.default_rng(0).choice(len(rows), 60, replace=False):
        row = rows.iloc[i]
        card = tx[(tx["cc_num"] == row.cc_num) & (tx["datetime"] < row.datetime)]
        gap = (row.datetime - card["datetime"].iloc[-1]).total_seconds() if len(card) else np.inf
        if gap > LOOKBACK.total_seconds():
            assert seconds[i] == LOOKBACK.total_seconds() and km_prev[i] == 0.0
        else:
            prev = card.iloc[-1]
            assert seconds[i] == pytest.approx(gap)
            assert km_prev[i] == pytest.approx(haversine_km(row.lat, row.lon, prev["lat"], prev["lon"]))
        home = homes.loc[row.cc_num]
        assert km_home[i] == pytest.approx(haversine_km(row.lat, row.lon, home["home_lat"], home["home_lon"]))
    assert (
        amount_bin(rows["amount"]).tolist()
        == np.searchsorted([10, 25, 50, 100, 250, 500, 1000], rows["amount"], "right").tolist()
    )
    assert category_code(rows["category"]).tolist() == [CATEGORIES.index(c) for c in rows["category"]]


def test_an_incremental_window_equals_the_full_backfill(sample: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    tx = sample[1]
    start, end = DATA_START + timedelta(days=9), DATA_START + timedelta(days=11)
    history = tx[(tx["datetime"] >= pd.Timestamp(start - LOOKBACK)) & (tx["datetime"] < pd.Timestamp(end))]
    full_w = window_features(tx, start, end)
    full_t = transaction_features(tx, start, end)
    pd.testing.assert_frame_equal(window_features(history, start, end), full_w)
    pd.testing.assert_frame_equal(transaction_features(history, start, end), full_t)
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
    seconds, km_prev, km_home = _movement(joined(tx, profiles))
    assert seconds.tolist() == [LOOKBACK.total_seconds()] * 2  # none before, then one 8 days earlier
    assert km_prev.tolist() == [0.0, 0.0]
    assert km_home[1] == pytest.approx(3335.8, abs=1.0)  # 30 degrees of latitude


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


def test_the_windows_cover_every_span() -> None:
    assert set(WINDOWS) == set(SPANS)
