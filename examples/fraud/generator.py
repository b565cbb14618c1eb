"""A deterministic source of synthetic credit-card transactions with injected fraud.

The "source system" of the fraud example: card profiles and a stream of transactions that any
time window can be read from. Everything is a pure function of ``(n_cards, seed)`` and the window:
each calendar day is generated from its own seeded generator, so reading January in one call or
day by day gives the same rows, and two runs on two machines give the same bytes.

Legitimate behaviour: each card has a home city, a daily transaction rate and a spending scale;
most purchases happen near home during waking hours, a few while travelling to another city.

Injected fraud (about 1% of transactions, labelled ``is_fraud = 1``):

- **bursts**: a stolen card is used 4-12 times within minutes to an hour, far from home, starting
  with small "test" amounts and then large ones;
- **far-away** purchases: one or two transactions in a distant city at an hour the card rarely
  uses;
- **unusual amounts**: a purchase near home of 8-30x the card's usual spend in a high-value category;
- **quiet fraud**: an online purchase near home at an ordinary amount, which no feature can tell
  from a legitimate one (so no model is perfect, as in real life).

**Drift switch** (``drift_from``, for the monitoring demo): from that day on, legitimate amounts are
50% higher (prices went up), a new merchant category ``crypto`` takes 8% of purchases (a code the
feature pipeline's vocabulary does not know: -1), and the far-away fraud pattern changes into
large ``crypto`` purchases near home at night, which a model trained before the switch has not
seen. Days before ``drift_from`` are generated exactly as without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import pandas as pd

DATA_START: Final = datetime(2026, 1, 1, tzinfo=UTC)
"""The first day of the example data set (the default window is 90 days from here)."""

CATEGORIES: Final = (
    "grocery",
    "restaurant",
    "gas",
    "pharmacy",
    "entertainment",
    "travel",
    "online_shopping",
    "electronics",
    "jewelry",
)
# legitimate purchases: probability and price factor of each category
_CATEGORY_P: Final = np.array([0.30, 0.20, 0.15, 0.07, 0.08, 0.03, 0.12, 0.04, 0.01])
_CATEGORY_FACTOR: Final = np.array([1.0, 0.9, 1.1, 0.7, 1.2, 4.0, 1.5, 3.0, 5.0])
NEW_CATEGORY: Final = "crypto"
"""The merchant category that appears with the drift switch."""
_ALL_CATEGORIES: Final = (*CATEGORIES, NEW_CATEGORY)
_NEW_FACTOR: Final = 2.0
_NEW_SHARE: Final = 0.08
_INFLATION: Final = 1.5
_FRAUD_CATEGORIES: Final = np.array(
    [CATEGORIES.index(c) for c in ("online_shopping", "electronics", "jewelry")]
)

# (latitude, longitude) of the cities cards live in and travel to
CITIES: Final = np.array(
    [
        (40.71, -74.01),  # New York
        (34.05, -118.24),  # Los Angeles
        (41.88, -87.63),  # Chicago
        (29.76, -95.37),  # Houston
        (33.45, -112.07),  # Phoenix
        (39.95, -75.17),  # Philadelphia
        (29.42, -98.49),  # San Antonio
        (32.72, -117.16),  # San Diego
        (32.78, -96.80),  # Dallas
        (37.34, -121.89),  # San Jose
        (30.27, -97.74),  # Austin
        (30.33, -81.66),  # Jacksonville
        (37.77, -122.42),  # San Francisco
        (39.96, -83.00),  # Columbus
        (35.23, -80.84),  # Charlotte
        (39.77, -86.16),  # Indianapolis
        (47.61, -122.33),  # Seattle
        (39.74, -104.99),  # Denver
        (38.91, -77.04),  # Washington
        (42.36, -71.06),  # Boston
        (36.17, -115.14),  # Las Vegas
        (45.52, -122.68),  # Portland
        (25.76, -80.19),  # Miami
        (33.75, -84.39),  # Atlanta
        (44.98, -93.27),  # Minneapolis
    ]
)
PROVIDERS: Final = ("visa", "mastercard", "amex", "discover")

# expected fraud events per card per day, by pattern
_BURSTS_PER_CARD_DAY: Final = 0.0015
_FAR_PER_CARD_DAY: Final = 0.0035
_AMOUNT_PER_CARD_DAY: Final = 0.0030
_QUIET_PER_CARD_DAY: Final = 0.0015
# hour-of-day weights of legitimate purchases (quiet at night)
_HOUR_WEIGHTS: Final = np.concatenate(
    [
        [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 1.8, 2.0, 2.2],  # 0h-11h UTC
        [2.5, 2.3, 2.0, 2.0, 2.1, 2.4, 2.6, 2.4, 2.0, 1.5, 1.0, 0.6],  # 12h-23h UTC
    ]
)
_HOUR_P: Final = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()
_US_PER_DAY: Final = 86_400_000_000


@dataclass(frozen=True)
class SyntheticData:
    """Card profiles and the transactions of one window."""

    profiles: pd.DataFrame
    transactions: pd.DataFrame


def generate(
    n_cards: int = 1000,
    days: int = 90,
    seed: int = 7,
    start: datetime = DATA_START,
    drift_from: datetime | None = None,
) -> SyntheticData:
    """Profiles of ``n_cards`` cards and their transactions over ``days`` days from ``start``."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    profiles = generate_profiles(n_cards, seed)
    end = start + timedelta(days=days)
    return SyntheticData(profiles, generate_transactions(profiles, start, end, seed, drift_from))


def generate_profiles(n_cards: int = 1000, seed: int = 7) -> pd.DataFrame:
    """One row per card: ``cc_num``, provider, birth year, credit limit, home location, issue date.

    The private columns ``_rate`` (transactions per day) and ``_scale`` (typical amount) drive the
    transaction generator; feature pipelines must not use them (a real bank does not know them).
    """
    if isinstance(n_cards, bool) or not isinstance(n_cards, int) or n_cards < 1:
        raise ValueError(f"n_cards must be a positive integer, got {n_cards!r}")
    rng = np.random.default_rng([seed, 0])
    city = rng.integers(0, len(CITIES), n_cards)
    jitter = rng.normal(0.0, 0.15, (n_cards, 2))
    issued_days = rng.integers(30, 3 * 365, n_cards)
    return pd.DataFrame(
        {
            "cc_num": 4_000_000_000_000_000 + np.arange(n_cards, dtype=np.int64) * 7_919,
            "provider": np.array(PROVIDERS)[rng.choice(len(PROVIDERS), n_cards, p=[0.5, 0.3, 0.12, 0.08])],
            "birth_year": rng.integers(1945, 2006, n_cards),
            "credit_limit": np.round(rng.choice([1_000, 2_500, 5_000, 10_000, 20_000], n_cards), 2).astype(
                float
            ),
            "home_lat": CITIES[city, 0] + jitter[:, 0],
            "home_lon": CITIES[city, 1] + jitter[:, 1],
            "issued_at": pd.to_datetime(DATA_START - pd.to_timedelta(issued_days, unit="D")),
            "_rate": np.clip(rng.lognormal(np.log(1.8), 0.5, n_cards), 0.3, 8.0),
            "_scale": np.clip(rng.lognormal(np.log(30.0), 0.5, n_cards), 5.0, 300.0),
        }
    )


def generate_transactions(
    profiles: pd.DataFrame,
    start: datetime,
    end: datetime,
    seed: int = 7,
    drift_from: datetime | None = None,
) -> pd.DataFrame:
    """The transactions with ``start <= datetime < end`` of the cards in ``profiles``.

    Columns: ``tid`` (unique id), ``cc_num``, ``datetime`` (UTC, microseconds), ``amount``,
    ``category``, ``lat``, ``lon``, ``is_fraud`` (0/1), sorted by time then card. The result depends
    only on the profiles, the seed, the drift switch and the window, never on how a longer period
    is split into windows. Days from ``drift_from`` (rounded down to a day) on are drifted (see
    the module docs).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be tz-aware datetimes (UTC)")
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    if drift_from is not None and drift_from.tzinfo is None:
        raise ValueError("drift_from must be a tz-aware datetime (UTC)")
    first_day = (start - DATA_START).days - 1  # a burst that starts the day before may spill over
    last_day = -((DATA_START - end) // timedelta(days=1))  # ceil
    drift_day = None if drift_from is None else (drift_from - DATA_START) // timedelta(days=1)
    frames = [
        _day(profiles, day, seed, drift_day is not None and day >= drift_day)
        for day in range(first_day, last_day)
    ]
    data = pd.concat(frames, ignore_index=True)
    start_us = _epoch_us(start)
    end_us = _epoch_us(end)
    data = data[(data["_us"] >= start_us) & (data["_us"] < end_us)]
    data = data.sort_values(["_us", "cc_num", "tid"], kind="stable")
    data = data.drop_duplicates(["cc_num", "_us"], keep="first")
    data.insert(2, "datetime", pd.to_datetime(data["_us"].to_numpy(), unit="us", utc=True))
    return data.drop(columns="_us").reset_index(drop=True)


def _day(profiles: pd.DataFrame, day: int, seed: int, drifted: bool = False) -> pd.DataFrame:
    """All transactions generated on day ``day`` (days since DATA_START; may be negative)."""
    rng = np.random.default_rng([seed, 1, day + 1_000_000])
    day_us = _epoch_us(DATA_START) + day * _US_PER_DAY
    n_cards = len(profiles)
    cc_num = profiles["cc_num"].to_numpy()
    home = profiles[["home_lat", "home_lon"]].to_numpy()
    scale = profiles["_scale"].to_numpy()

    # legitimate purchases
    counts = rng.poisson(profiles["_rate"].to_numpy())
    card = np.repeat(np.arange(n_cards), counts)
    n = len(card)
    hour = rng.choice(24, n, p=_HOUR_P)
    offset_us = (hour * 3600 + rng.uniform(0, 3600, n)) * 1e6
    category = rng.choice(len(CATEGORIES), n, p=_CATEGORY_P)
    amount = scale[card] * _CATEGORY_FACTOR[category] * rng.lognormal(0.0, 0.6, n)
    travelling = rng.random(n) < 0.02
    where = home[card] + rng.normal(0.0, 0.05, (n, 2))
    where[travelling] = CITIES[rng.integers(0, len(CITIES), travelling.sum())] + rng.normal(
        0.0, 0.05, (travelling.sum(), 2)
    )
    if drifted:  # prices went up, and a new kind of merchant appeared (drawn after the usual draws)
        new = rng.random(n) < _NEW_SHARE
        category[new] = len(CATEGORIES)
        amount[new] = scale[card[new]] * _NEW_FACTOR * rng.lognormal(0.0, 0.6, int(new.sum()))
        amount *= _INFLATION
    parts = [_frame(cc_num[card], day_us + offset_us, amount, category, where, 0)]

    # fraud pattern 1: bursts of transactions far from home
    n_bursts = rng.poisson(_BURSTS_PER_CARD_DAY * n_cards)
    if n_bursts:
        burst_card = rng.integers(0, n_cards, n_bursts)
        size = rng.integers(4, 13, n_bursts)
        b_card = np.repeat(burst_card, size)
        b_start = np.repeat(rng.uniform(0, 86_400, n_bursts), size)
        b_len = np.repeat(rng.uniform(300, 3600, n_bursts), size)
        m = len(b_card)
        b_time = b_start + rng.uniform(0, 1, m) * b_len
        position = np.arange(m) - np.repeat(np.cumsum(size) - size, size)  # 0, 1, ... within a burst
        b_amount = np.where(position < 2, rng.uniform(1.0, 5.0, m), scale[b_card] * rng.uniform(3.0, 10.0, m))
        b_where = np.repeat(_far_from(home[burst_card], rng), size, axis=0) + rng.normal(0.0, 0.02, (m, 2))
        b_category = rng.choice(_FRAUD_CATEGORIES, m)
        parts.append(_frame(cc_num[b_card], day_us + b_time * 1e6, b_amount, b_category, b_where, 1))

    # fraud pattern 2: one or two purchases in a distant city, at night; after the drift switch,
    # large purchases of the new category near home at night instead
    n_far = rng.poisson(_FAR_PER_CARD_DAY * n_cards)
    if n_far and drifted:
        far_card = np.repeat(rng.integers(0, n_cards, n_far), rng.integers(1, 3, n_far))
        k = len(far_card)
        f_time = (rng.integers(0, 6, k) * 3600 + rng.uniform(0, 3600, k)) * 1e6
        f_amount = scale[far_card] * rng.uniform(6.0, 20.0, k)
        f_where = home[far_card] + rng.normal(0.0, 0.05, (k, 2))
        f_category = np.full(k, len(CATEGORIES))
        parts.append(_frame(cc_num[far_card], day_us + f_time, f_amount, f_category, f_where, 1))
    elif n_far:
        far_card = np.repeat(rng.integers(0, n_cards, n_far), rng.integers(1, 3, n_far))
        k = len(far_card)
        f_time = (rng.integers(0, 6, k) * 3600 + rng.uniform(0, 3600, k)) * 1e6
        f_amount = scale[far_card] * rng.uniform(2.0, 8.0, k)
        f_where = _far_from(home[far_card], rng)
        f_category = rng.choice(len(CATEGORIES), k, p=_CATEGORY_P)
        parts.append(_frame(cc_num[far_card], day_us + f_time, f_amount, f_category, f_where, 1))

    # fraud pattern 3: an unusually large purchase near home
    n_amount = rng.poisson(_AMOUNT_PER_CARD_DAY * n_cards)
    if n_amount:
        a_card = rng.integers(0, n_cards, n_amount)
        a_time = rng.uniform(0, 86_400, n_amount) * 1e6
        a_amount = scale[a_card] * rng.uniform(8.0, 30.0, n_amount)
        a_where = home[a_card] + rng.normal(0.0, 0.05, (n_amount, 2))
        a_category = rng.choice(_FRAUD_CATEGORIES, n_amount)
        parts.append(_frame(cc_num[a_card], day_us + a_time, a_amount, a_category, a_where, 1))

    # fraud pattern 4: quiet fraud that looks like ordinary spending
    n_quiet = rng.poisson(_QUIET_PER_CARD_DAY * n_cards)
    if n_quiet:
        q_card = rng.integers(0, n_cards, n_quiet)
        q_time = (rng.choice(24, n_quiet, p=_HOUR_P) * 3600 + rng.uniform(0, 3600, n_quiet)) * 1e6
        q_category = np.full(n_quiet, CATEGORIES.index("online_shopping"))
        q_amount = scale[q_card] * _CATEGORY_FACTOR[q_category] * rng.lognormal(0.0, 0.6, n_quiet)
        q_where = home[q_card] + rng.normal(0.0, 0.05, (n_quiet, 2))
        parts.append(_frame(cc_num[q_card], day_us + q_time, q_amount, q_category, q_where, 1))

    data = pd.concat(parts, ignore_index=True)
    data.insert(0, "tid", np.char.add(f"{day:+05d}-", np.char.zfill(np.arange(len(data)).astype(str), 6)))
    return data


def _far_from(home: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A city at least ~800 km from each home (chosen among the cities far enough away)."""
    distance = np.hypot(
        (CITIES[None, :, 0] - home[:, None, 0]) * 111.0,
        (CITIES[None, :, 1] - home[:, None, 1]) * 111.0 * np.cos(np.radians(home[:, None, 0])),
    )
    far = distance > 800.0
    # pick uniformly among the far cities: random scores, masked, argmax
    scores = np.where(far, rng.random(far.shape), -1.0)
    return CITIES[np.argmax(scores, axis=1)]  # type: ignore[no-any-return]


def _frame(
    cc_num: np.ndarray,
    us: np.ndarray,
    amount: np.ndarray,
    category: np.ndarray,
    where: np.ndarray,
    fraud: int,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cc_num": cc_num.astype(np.int64),
            "_us": us.astype(np.int64),
            "amount": np.round(np.maximum(amount, 0.5), 2),
            "category": np.array(_ALL_CATEGORIES)[category],
            "lat": np.round(where[:, 0], 5),
            "lon": np.round(where[:, 1], 5),
            "is_fraud": np.full(len(cc_num), fraud, dtype=np.int64),
        }
    )


def _epoch_us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
