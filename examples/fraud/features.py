"""Feature engineering of the fraud example: the code feature pipelines run, and online requests reuse.

Three groups of features:

- **transaction features** (one row per transaction): the amount and its bin, the category, the
  time since the card's previous transaction, the distance from the previous transaction's place
  and from the card holder's home;
- **window features** (one row per transaction): per card, the count, sum and mean of amounts over
  the last hour, day and week up to and including the transaction, computed with DuckDB window
  functions (``RANGE BETWEEN INTERVAL ... PRECEDING AND CURRENT ROW``) and published just after
  the transaction, so the next transaction (in training and online alike) sees them;
- **profile features** (one row per card): static attributes of the card and its holder.

Incremental by design: features of the rows in ``[start, end)`` need the card's transactions of
the :data:`LOOKBACK` before ``start`` and nothing else, and "previous transaction" means the
previous one within the lookback, so a 90-day backfill and 90 daily runs write identical rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd

from examples.fraud.generator import CATEGORIES

LOOKBACK: Final = timedelta(days=7)
"""History a window of transactions needs before its start (the longest aggregation window)."""

PUBLISH_DELAY: Final = timedelta(microseconds=1)
"""Window rows become available this long after their transaction (see :func:`window_features`)."""

WINDOWS: Final = {"1h": "1 HOUR", "1d": "1 DAY", "7d": "7 DAY"}
AMOUNT_BINS: Final = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
"""Upper bounds of the amount bins: bin 0 is < 10, bin 7 is >= 1000."""

EARTH_RADIUS_KM: Final = 6371.0

TRANSACTION_COLUMNS: Final = (
    "cc_num",
    "datetime",
    "tid",
    "amount",
    "amount_bin",
    "category",
    "category_code",
    "lat",
    "lon",
    "seconds_since_prev",
    "km_from_prev",
    "km_from_home",
    "is_fraud",
)
WINDOW_COLUMNS: Final = (
    "cc_num",
    "datetime",
    *(f"{agg}_{w}" for w in WINDOWS for agg in ("tx_count", "amount_sum", "amount_mean")),
)
PROFILE_COLUMNS: Final = (
    "cc_num",
    "provider",
    "birth_year",
    "credit_limit",
    "home_lat",
    "home_lon",
    "issued_at",
)


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (numpy-vectorised)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2.0) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))  # type: ignore[no-any-return]


def amount_bin(amount: Any) -> np.ndarray:
    """The bin index (0-7) of each amount; see :data:`AMOUNT_BINS`."""
    return np.searchsorted(
        np.asarray(AMOUNT_BINS), np.asarray(amount, dtype=np.float64), side="right"
    ).astype(np.int64)


def category_code(category: Any) -> np.ndarray:
    """The index of each category in the source's fixed vocabulary (-1 for an unknown one).

    A model-independent encoding done by the feature pipeline, so a live request can send the
    code as a plain number.
    """
    vocabulary = pd.Index(CATEGORIES)
    return np.asarray(vocabulary.get_indexer(np.asarray(category, dtype=object).reshape(-1)), dtype=np.int64)


def profile_features(profiles: pd.DataFrame) -> pd.DataFrame:
    """The card-profile feature group rows (the source's private generator columns dropped)."""
    return profiles.loc[:, list(PROFILE_COLUMNS)].reset_index(drop=True)


def transaction_features(
    transactions: pd.DataFrame,
    profiles: pd.DataFrame,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """One feature row per transaction with ``start <= datetime < end``.

    ``transactions`` must hold the :data:`LOOKBACK` before ``start`` as well (it is only read).
    """
    import duckdb

    con = duckdb.connect()
    try:
        con.register(
            "tx",
            _arrow(
                transactions, ["tid", "cc_num", "datetime", "amount", "category", "lat", "lon", "is_fraud"]
            ),
        )
        con.register("cards", _arrow(profiles, ["cc_num", "home_lat", "home_lon"]))
        lookback_s = int(LOOKBACK.total_seconds())
        data = _query(
            con,
            """
            SELECT tx.*, cards.home_lat, cards.home_lon,
                   epoch(tx.datetime - lag(tx.datetime) OVER w) AS gap_s,
                   lag(tx.lat) OVER w AS prev_lat,
                   lag(tx.lon) OVER w AS prev_lon
            FROM tx JOIN cards USING (cc_num)
            WINDOW w AS (PARTITION BY tx.cc_num ORDER BY tx.datetime)
            """,
        )
    finally:
        con.close()
    data = _within(data, start, end)
    # the previous transaction counts only when it lies within the lookback (see module docstring)
    seen = data["gap_s"].notna().to_numpy() & (data["gap_s"].to_numpy(na_value=np.inf) <= lookback_s)
    gap = np.where(seen, data["gap_s"].to_numpy(na_value=0.0), float(lookback_s))
    km_prev = np.where(
        seen,
        haversine_km(
            data["lat"],
            data["lon"],
            data["prev_lat"].fillna(data["lat"]),
            data["prev_lon"].fillna(data["lon"]),
        ),
        0.0,
    )
    out = pd.DataFrame(
        {
            "cc_num": data["cc_num"].to_numpy(np.int64),
            "datetime": data["datetime"].dt.tz_convert("UTC"),
            "tid": data["tid"].astype(str),
            "amount": data["amount"].to_numpy(np.float64),
            "amount_bin": amount_bin(data["amount"]),
            "category": data["category"].astype(str),
            "category_code": category_code(data["category"]),
            "lat": data["lat"].to_numpy(np.float64),
            "lon": data["lon"].to_numpy(np.float64),
            "seconds_since_prev": gap.astype(np.float64),
            "km_from_prev": km_prev,
            "km_from_home": haversine_km(data["lat"], data["lon"], data["home_lat"], data["home_lon"]),
            "is_fraud": data["is_fraud"].to_numpy(np.int64),
        }
    )
    return out.sort_values(["datetime", "cc_num"], kind="stable").reset_index(drop=True)


def window_features(
    transactions: pd.DataFrame, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Rolling count/sum/mean of amounts per card over 1 h, 1 day and 7 days, for ``[start, end)``.

    One row per transaction: the card's state after it, i.e. the aggregates of the card's
    transactions in ``[t - window, t]`` where ``t`` is the transaction's time (itself included).
    The row's ``datetime`` is when that state becomes available: ``t`` plus :data:`PUBLISH_DELAY`.
    So a point-in-time join at a transaction's own time sees the state after the card's
    *previous* transaction, which is exactly what the online store holds when a live transaction
    arrives: training and online serving see the same values (no skew), and the live
    transaction's own amount, time and place reach the model through the request-time features.

    ``transactions`` must hold the :data:`LOOKBACK` before ``start`` as well.
    """
    import duckdb

    aggregates = ",\n".join(
        f"count(*) OVER w{w} AS tx_count_{w}, sum(amount) OVER w{w} AS amount_sum_{w}, "
        f"avg(amount) OVER w{w} AS amount_mean_{w}"
        for w in WINDOWS
    )
    windows = ",\n".join(
        f"w{w} AS (PARTITION BY cc_num ORDER BY datetime RANGE BETWEEN INTERVAL {span} PRECEDING AND CURRENT ROW)"
        for w, span in WINDOWS.items()
    )
    con = duckdb.connect()
    try:
        con.register("tx", _arrow(transactions, ["cc_num", "datetime", "amount"]))
        data = _query(con, f"SELECT cc_num, datetime, {aggregates} FROM tx WINDOW {windows}")
    finally:
        con.close()
    data = _within(data, start, end)
    for w in WINDOWS:
        data[f"tx_count_{w}"] = data[f"tx_count_{w}"].astype(np.int64)
    data["cc_num"] = data["cc_num"].astype(np.int64)
    data["datetime"] = data["datetime"].dt.tz_convert("UTC") + PUBLISH_DELAY
    return (
        data.loc[:, list(WINDOW_COLUMNS)]
        .sort_values(["datetime", "cc_num"], kind="stable")
        .reset_index(drop=True)
    )


def live_transaction_features(
    transaction: dict[str, Any], previous: dict[str, Any] | None, profile: dict[str, Any] | None
) -> dict[str, Any]:
    """The request-time features of one live transaction, as the feature pipeline computes them.

    Args:
        transaction: ``amount``, ``category``, ``lat``, ``lon`` and ``datetime`` (tz-aware).
        previous: The card's latest stored transaction row (``datetime``, ``lat``, ``lon``), or None.
        profile: The card's profile row (``home_lat``, ``home_lon``), or None when unknown.
    """
    when = pd.Timestamp(transaction["datetime"])
    lookback_s = LOOKBACK.total_seconds()
    gap, km_prev = lookback_s, 0.0
    if previous is not None:
        seconds = (when - pd.Timestamp(previous["datetime"])).total_seconds()
        if 0 <= seconds <= lookback_s:
            gap = seconds
            km_prev = float(
                haversine_km(transaction["lat"], transaction["lon"], previous["lat"], previous["lon"])
            )
    km_home = 0.0
    if profile is not None:
        km_home = float(
            haversine_km(transaction["lat"], transaction["lon"], profile["home_lat"], profile["home_lon"])
        )
    return {
        "amount": float(transaction["amount"]),
        "amount_bin": int(amount_bin([transaction["amount"]])[0]),
        "category_code": int(category_code([transaction["category"]])[0]),
        "seconds_since_prev": float(gap),
        "km_from_prev": km_prev,
        "km_from_home": km_home,
    }


def _arrow(frame: pd.DataFrame, columns: list[str]) -> Any:
    import pyarrow as pa

    return pa.Table.from_pandas(frame.loc[:, columns], preserve_index=False)


def _query(con: Any, sql: str) -> pd.DataFrame:
    relation = con.sql(sql)
    to_table = getattr(relation, "to_arrow_table", None) or relation.arrow  # DuckDB 2.x / 1.x
    frame: pd.DataFrame = to_table().to_pandas()
    return frame


def _within(data: pd.DataFrame, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    mask = np.ones(len(data), dtype=bool)
    if start is not None:
        mask &= (data["datetime"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        mask &= (data["datetime"] < pd.Timestamp(end)).to_numpy()
    return data[mask]
