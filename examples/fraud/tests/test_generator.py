"""The synthetic transaction source: deterministic, window-independent, with the fraud it promises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from examples.fraud.features import haversine_km
from examples.fraud.generator import DATA_START, generate, generate_profiles, generate_transactions


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    generated = generate(n_cards=200, days=30, seed=11)
    return generated.profiles, generated.transactions


def test_same_seed_same_bytes_other_seed_other_data() -> None:
    first = generate(n_cards=40, days=5, seed=3)
    second = generate(n_cards=40, days=5, seed=3)
    pd.testing.assert_frame_equal(first.profiles, second.profiles)
    pd.testing.assert_frame_equal(first.transactions, second.transactions)
    other = generate(n_cards=40, days=5, seed=4).transactions
    assert not other["amount"].equals(first.transactions["amount"].iloc[: len(other)])


def test_a_period_read_in_pieces_equals_the_period_read_at_once() -> None:
    profiles = generate_profiles(60, seed=5)
    whole = generate_transactions(profiles, DATA_START, DATA_START + timedelta(days=6), seed=5)
    cut = DATA_START + timedelta(days=2, hours=7, minutes=13)
    pieces = pd.concat(
        [
            generate_transactions(profiles, DATA_START, cut, seed=5),
            generate_transactions(profiles, cut, DATA_START + timedelta(days=6), seed=5),
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(whole, pieces)


def test_shape_types_and_window(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    profiles, tx = data
    assert list(tx.columns) == ["tid", "cc_num", "datetime", "amount", "category", "lat", "lon", "is_fraud"]
    assert len(profiles) == 200 and profiles["cc_num"].is_unique
    assert 200 * 30 * 1.2 < len(tx) < 200 * 30 * 3.0  # about two purchases per card and day
    assert str(tx["datetime"].dt.tz) == "UTC"
    assert tx["datetime"].min() >= pd.Timestamp(DATA_START)
    assert tx["datetime"].max() < pd.Timestamp(DATA_START + timedelta(days=30))
    assert tx["datetime"].is_monotonic_increasing
    assert tx["tid"].is_unique
    assert not tx.duplicated(["cc_num", "datetime"]).any()
    assert set(tx["cc_num"]) <= set(profiles["cc_num"])
    assert (tx["amount"] > 0).all() and set(tx["is_fraud"].unique()) == {0, 1}


def test_fraud_rate_is_about_one_percent(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    rate = data[1]["is_fraud"].mean()
    assert 0.005 < rate < 0.02, rate


def test_fraud_patterns_are_present(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    profiles, tx = data
    tx = tx.merge(profiles[["cc_num", "home_lat", "home_lon", "_scale"]], on="cc_num")
    tx["km_home"] = haversine_km(tx["lat"], tx["lon"], tx["home_lat"], tx["home_lon"])
    fraud, legit = tx[tx["is_fraud"] == 1], tx[tx["is_fraud"] == 0]

    # bursts: fraudulent transactions with >= 4 fraudulent ones on the same card within an hour
    fraud = fraud.sort_values(["cc_num", "datetime"])
    in_hour = (
        fraud.set_index("datetime").groupby("cc_num")["amount"].rolling("1h").count().reset_index(drop=True)
    )
    assert (in_hour >= 4).sum() >= 5
    # far away: most fraud is > 800 km from home, most legitimate spending is near home
    assert (fraud["km_home"] > 800).mean() > 0.5
    assert (legit["km_home"] < 100).mean() > 0.95
    # unusual amounts: near-home fraud of >= 8x the card's usual spend exists, and is rare when legit
    big = tx["amount"] >= 8 * tx["_scale"]
    assert (big & (tx["is_fraud"] == 1) & (tx["km_home"] < 100)).sum() >= 5
    assert (big & (tx["is_fraud"] == 0)).mean() < 0.01


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_cards must be a positive integer"):
        generate_profiles(0)
    profiles = generate_profiles(3)
    with pytest.raises(ValueError, match="tz-aware"):
        generate_transactions(profiles, datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="must be after start"):
        generate_transactions(profiles, DATA_START, DATA_START)
    with pytest.raises(ValueError, match="days must be >= 1"):
        generate(3, days=0)


def test_profiles_are_plausible() -> None:
    profiles = generate_profiles(500, seed=1)
    assert profiles["birth_year"].between(1945, 2005).all()
    assert set(profiles["provider"]) == {"visa", "mastercard", "amex", "discover"}
    assert (profiles["issued_at"] < pd.Timestamp(DATA_START)).all()
    assert np.isfinite(profiles[["home_lat", "home_lon"]].to_numpy()).all()
    assert profiles["issued_at"].dt.tz is not None and datetime.now(UTC) > profiles["issued_at"].max()


def test_the_drift_switch_changes_only_the_days_from_it() -> None:
    """Before the switch the bytes are unchanged; from it, prices are 50% higher, the new category
    'crypto' takes ~8% of purchases and far-away fraud becomes large crypto purchases near home."""
    profiles = generate_profiles(300, seed=3)
    switch = DATA_START + timedelta(days=10)
    plain = generate_transactions(profiles, DATA_START, DATA_START + timedelta(days=20), seed=3)
    drifted = generate_transactions(
        profiles, DATA_START, DATA_START + timedelta(days=20), seed=3, drift_from=switch
    )
    before = drifted["datetime"] < pd.Timestamp(switch)
    pd.testing.assert_frame_equal(
        drifted[before].reset_index(drop=True),
        plain[plain["datetime"] < pd.Timestamp(switch)].reset_index(drop=True),
    )
    after, usual = drifted[~before], plain[plain["datetime"] >= pd.Timestamp(switch)]
    assert "crypto" not in set(plain["category"])
    legit = after[after["is_fraud"] == 0]
    assert 0.06 < (legit["category"] == "crypto").mean() < 0.10
    grocery = legit[legit["category"] == "grocery"]["amount"].median()
    usual_grocery = usual[(usual["is_fraud"] == 0) & (usual["category"] == "grocery")]["amount"].median()
    assert 1.3 < grocery / usual_grocery < 1.7
    fraud = after[after["is_fraud"] == 1].merge(profiles, on="cc_num")
    crypto_fraud = fraud[fraud["category"] == "crypto"]
    assert len(crypto_fraud) > 8
    near = haversine_km(
        crypto_fraud["lat"], crypto_fraud["lon"], crypto_fraud["home_lat"], crypto_fraud["home_lon"]
    )
    assert np.median(near) < 50  # near home, where this pattern used to be far away
    with pytest.raises(ValueError, match="tz-aware"):
        generate_transactions(profiles, DATA_START, switch, drift_from=datetime(2026, 1, 5))
