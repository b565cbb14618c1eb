"""The fraud example's feature pipelines: source data in, three feature groups out.

- ``transactions`` (key ``cc_num``, event time ``datetime``, online): one row per transaction: the
  raw transaction and the ``is_fraud`` label;
- ``card_windows`` (key ``cc_num``, event time ``datetime``, online): rolling aggregates per card
  and the time and place of its latest transaction;
- ``card_profiles`` (key ``cc_num``, online): static card attributes.

A run over a window ``[start, end)`` reads that window plus the 7-day lookback from the source and
upserts the window's rows, so re-running a window (a retry, a backfill) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from examples.fraud import features
from examples.fraud.generator import generate_profiles, generate_transactions

if TYPE_CHECKING:
    import fti
    from fti.features.feature_group import FeatureGroup

TRANSACTIONS = "transactions"
WINDOWS = "card_windows"
PROFILES = "card_profiles"
DEFAULT_CARDS = 1000
DEFAULT_SEED = 7


@dataclass(frozen=True)
class FeatureGroups:
    transactions: FeatureGroup
    windows: FeatureGroup
    profiles: FeatureGroup


def feature_groups(project: fti.Project) -> FeatureGroups:
    """Create (or get) the example's three feature groups."""
    import pandera.pandas as pa

    fs = project.feature_store
    transactions = fs.get_or_create_feature_group(
        TRANSACTIONS,
        version=1,
        primary_key=["cc_num"],
        event_time="datetime",
        online_enabled=True,
        description="Card transactions (amount, category, time, place) and the is_fraud label",
        expectation_suite=pa.DataFrameSchema(
            {
                "amount": pa.Column(float, pa.Check.gt(0)),
                "is_fraud": pa.Column(int, pa.Check.isin([0, 1])),
                "lat": pa.Column(float, pa.Check.in_range(-90, 90)),
                "lon": pa.Column(float, pa.Check.in_range(-180, 180)),
            }
        ),
    )
    windows = fs.get_or_create_feature_group(
        WINDOWS,
        version=1,
        primary_key=["cc_num"],
        event_time="datetime",
        online_enabled=True,
        description="Per-card count, sum and mean of amounts over 1 hour, 1 day and 7 days; the "
        "time and place of the card's latest transaction",
    )
    profiles = fs.get_or_create_feature_group(
        PROFILES,
        version=1,
        primary_key=["cc_num"],
        online_enabled=True,
        description="Static card attributes: provider, holder's birth year, credit limit, home location",
    )
    return FeatureGroups(transactions, windows, profiles)


def ingest_profiles(project: fti.Project, cards: int = DEFAULT_CARDS, seed: int = DEFAULT_SEED) -> int:
    """Upsert the card profiles; returns the number of rows written."""
    groups = feature_groups(project)
    rows = features.profile_features(generate_profiles(cards, seed))
    return groups.profiles.insert(rows).rows


def ingest_transactions(
    project: fti.Project,
    start: datetime,
    end: datetime,
    cards: int = DEFAULT_CARDS,
    seed: int = DEFAULT_SEED,
    drift_from: datetime | None = None,
) -> int:
    """Compute and upsert the transaction and window features of ``[start, end)``; returns rows.

    ``drift_from`` turns on the source's drift switch from that day (see :mod:`examples.fraud.generator`).
    """
    groups = feature_groups(project)
    profiles = generate_profiles(cards, seed)
    source = generate_transactions(profiles, start - features.LOOKBACK, end, seed, drift_from)
    transactions = features.transaction_features(source, start, end)
    if transactions.empty:
        return 0
    windows = features.window_features(source, start, end)
    groups.transactions.insert(transactions)
    groups.windows.insert(windows)
    return len(transactions)
