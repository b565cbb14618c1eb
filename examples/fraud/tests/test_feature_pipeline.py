"""The fraud feature pipeline on a real project: groups, idempotent windows, online rows."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

import fti
from examples.fraud import feature_pipeline, features
from examples.fraud.generator import DATA_START, generate_profiles, generate_transactions

CARDS, SEED = 30, 3


def test_windows_fill_the_groups_like_one_backfill(sqlite_project: fti.Project) -> None:
    project = sqlite_project
    middle, end = DATA_START + timedelta(days=5), DATA_START + timedelta(days=9)
    assert feature_pipeline.ingest_profiles(project, CARDS, SEED) == CARDS
    first = feature_pipeline.ingest_transactions(project, DATA_START, middle, CARDS, SEED)
    second = feature_pipeline.ingest_transactions(project, middle, end, CARDS, SEED)
    again = feature_pipeline.ingest_transactions(project, middle, end, CARDS, SEED)  # a retry
    assert first > 0 and second == again > 0

    # the source is infinite in time: the first window sees the week before DATA_START as history
    profiles = generate_profiles(CARDS, SEED)
    source = generate_transactions(profiles, DATA_START - features.LOOKBACK, end, SEED)
    expected_tx = features.transaction_features(source, DATA_START)
    expected_w = features.window_features(source, DATA_START)
    groups = feature_pipeline.feature_groups(project)
    stored_tx = groups.transactions.read().sort_values(["datetime", "cc_num"]).reset_index(drop=True)
    stored_w = groups.windows.read().sort_values(["datetime", "cc_num"]).reset_index(drop=True)
    assert len(stored_tx) == len(expected_tx) == first + second
    pd.testing.assert_frame_equal(stored_tx[expected_tx.columns], expected_tx, check_dtype=False)
    pd.testing.assert_frame_equal(stored_w[expected_w.columns], expected_w, check_dtype=False)
    assert [c.validation_status for c in groups.transactions.commits()] == ["passed"] * 3

    # online: the latest row per card
    cards = profiles["cc_num"].tolist()[:5]
    online = groups.windows.online_lookup([{"cc_num": c} for c in cards])
    latest = expected_w.groupby("cc_num").tail(1).set_index("cc_num")
    for card, row in zip(cards, online, strict=True):
        assert row is not None
        assert row["tx_count_7d"] == latest.loc[card, "tx_count_7d"]
        assert row["datetime"] == latest.loc[card, "datetime"]
    profile = groups.profiles.online_lookup([{"cc_num": cards[0]}])[0]
    assert profile is not None and profile["provider"] == profiles.loc[0, "provider"]


def test_an_empty_window_writes_nothing(sqlite_project: fti.Project) -> None:
    before = DATA_START - timedelta(days=400)
    assert feature_pipeline.ingest_transactions(sqlite_project, before, before + timedelta(hours=1), 5) == 0
    groups = feature_pipeline.feature_groups(sqlite_project)
    assert groups.transactions.latest_commit_version() is None
