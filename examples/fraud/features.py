"""Feature engineering of the fraud example: the code feature pipelines run, and on-demand
features that the feature view computes in training, batch scoring and the model server alike.

Three feature groups and one set of on-demand features:

- **transactions** (one row per transaction): the raw transaction (amount, category, time and
  place) and the ``is_fraud`` label;
- **window features** (one row per transaction): per card, the count, sum and mean of amounts over
  the last hour, day and week up to and including the transaction, computed with DuckDB window
  functions (``RANGE BETWEEN INTERVAL ... PRECEDING AND CURRENT ROW``), and the transaction's own
  time and place (``last_*``), published just after the transaction, so the next transaction (in
  training and online alike) sees them;
- **profile features** (one row per card): static attributes of the card and its holder;
- **on-demand features** (:func:`amount_bin`, :func:`category_code`, :func:`movement`): the
  amount's bin, the category's code, the time since and distance from the card's previous
  transaction and the distance from home. ``fti.on_demand`` functions: the feature view computes
  them from the stored columns for training and batch data, and the model server from the live
  transaction in the request plus the card's online rows, with this one implementation.

Incremental by design: window rows of ``[start, end)`` need the card's transactions of the
:data:`LOOKBACK` before ``start`` and nothing else, and "previous transaction" means the previous
one within the lookback, so a 90-day backfill and 90 daily runs write identical rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd

import fti
from examples.fraud.generator import CATEGORIES

LOOKBACK: Final = timedelta(days=7)
"""History a window of transactions needs before its start (the longest aggregation window)."""

PUBLISH_DELAY: Final = timedelta(microseconds=1)
"""Window rows become available this long after their transaction (see :func:`window_features`)."""

WINDOWS: Final = {"1h": "1 HOUR", "1d": "1 DAY", "7d": "7 DAY"}
AMOUNT_BINS: Final = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
"""Upper bounds of the amount bins: bin 0 is < 10, bin 7 is >= 1000."""

EARTH_RADIUS_KM: Final = 6371.0

TRANSACTION_COLUMNS: Final = ("cc_num", "datetime", "tid", "amount", "category", "lat", "lon", "is_fraud")
WINDOW_COLUMNS: Final = (
    "cc_num",
    "datetime",
    *(f"{agg}_{w}" for w in WINDOWS for agg in ("tx_count", "amount_sum", "amount_mean")),
    "last_datetime",
    "last_lat",
    "last_lon",
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


@fti.on_demand(inputs=["amount"], outputs={"amount_bin": "int64"})
def amount_bin(amount: Any) -> np.ndarray:
    """The bin index (0-7) of each amount; see :data:`AMOUNT_BINS`."""
    return np.searchsorted(
        np.asarray(AMOUNT_BINS), np.asarray(amount, dtype=np.float64), side="right"
    ).astype(np.int64)


@fti.on_demand(inputs=["category"], outputs={"category_code": "int64"}, drop=["category"])
def category_code(category: Any) -> np.ndarray:
    """The index of each category in the source's fixed vocabulary (-1 for an unknown one)."""
    values = np.asarray(category, dtype=object).reshape(-1)
    return np.fromiter((_CODES.get(c, -1) for c in values), dtype=np.int64, count=len(values))


_CODES: Final = {name: code for code, name in enumerate(CATEGORIES)}


@fti.on_demand(
    inputs=["datetime", "lat", "lon", "last_datetime", "last_lat", "last_lon", "home_lat", "home_lon"],
    outputs={"seconds_since_prev": "float64", "km_from_prev": "float64", "km_from_home": "float64"},
    drop=["lat", "lon", "last_datetime", "last_lat", "last_lon", "home_lat", "home_lon"],
)
def movement(
    when: Any, lat: Any, lon: Any, last_when: Any, last_lat: Any, last_lon: Any, home_lat: Any, home_lon: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seconds since and km from the card's previous transaction, and km from the holder's home.

    The previous transaction counts only within :data:`LOOKBACK` (otherwise: the lookback and
    0 km), as the window features do. ``last_*`` is the card's window row as of the transaction:
    in training the point-in-time join's, online the card's latest row, which is the same row.
    """
    lookback = LOOKBACK.total_seconds()
    gap = (when - last_when) / np.timedelta64(1, "s")  # NaN without a previous transaction (NaT)
    seen = (gap >= 0) & (gap <= lookback)
    km_prev = haversine_km(lat, lon, np.where(seen, last_lat, lat), np.where(seen, last_lon, lon))
    return (
        np.where(seen, gap, lookback),
        np.where(seen, km_prev, 0.0),
        haversine_km(lat, lon, home_lat, home_lon),
    )


ON_DEMAND: Final = (amount_bin, category_code, movement)
REQUEST_FIELDS: Final = ("amount", "category", "datetime", "lat", "lon")
"""What a live request sends besides ``cc_num``: the raw transaction, nothing derived."""


def profile_features(profiles: pd.DataFrame) -> pd.DataFrame:
    """The card-profile feature group rows (the source's private generator columns dropped)."""
    return profiles.loc[:, list(PROFILE_COLUMNS)].reset_index(drop=True)


def transaction_features(
    transactions: pd.DataFrame, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """One row per transaction with ``start <= datetime < end``: the raw transaction and its label
    (the request-time features are on-demand features of the feature view)."""
    data = _within(transactions, start, end)
    out = pd.DataFrame(
        {
            "cc_num": data["cc_num"].to_numpy(np.int64),
            "datetime": data["datetime"].dt.tz_convert("UTC"),
            "tid": data["tid"].astype(str),
            "amount": data["amount"].to_numpy(np.float64),
            "category": data["category"].astype(str),
            "lat": data["lat"].to_numpy(np.float64),
            "lon": data["lon"].to_numpy(np.float64),
            "is_fraud": data["is_fraud"].to_numpy(np.int64),
        }
    )
    return out.sort_values(["datetime", "cc_num"], kind="stable").reset_index(drop=True)


def window_features(
    transactions: pd.DataFrame, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Rolling count/sum/mean of amounts per card over 1 h, 1 day and 7 days, for ``[start, end)``.

    One row per transaction: the card's state after it, i.e. the aggregates of the card's
    transactions in ``[t - window, t]`` where ``t`` is the transaction's time (itself included),
    and the transaction's own time and place as ``last_datetime``, ``last_lat``, ``last_lon``.
    The row's ``datetime`` is when that state becomes available: ``t`` plus :data:`PUBLISH_DELAY`.
    So a point-in-time join at a transaction's own time sees the state after the card's
    *previous* transaction, which is exactly what the online store holds when a live transaction
    arrives: training and online serving see the same values (no skew), and the live
    transaction's own amount, time and place reach the model through the on-demand features.

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
        con.register("tx", _arrow(transactions, ["cc_num", "datetime", "amount", "lat", "lon"]))
        data = _query(
            con,
            f"SELECT cc_num, datetime, {aggregates}, datetime AS last_datetime, lat AS last_lat, "
            f"lon AS last_lon FROM tx WINDOW {windows}",
        )
    finally:
        con.close()
    data = _within(data, start, end)
    for w in WINDOWS:
        data[f"tx_count_{w}"] = data[f"tx_count_{w}"].astype(np.int64)
    data["cc_num"] = data["cc_num"].astype(np.int64)
    data["last_datetime"] = data["datetime"].dt.tz_convert("UTC")
    data["datetime"] = data["last_datetime"] + PUBLISH_DELAY
    return (
        data.loc[:, list(WINDOW_COLUMNS)]
        .sort_values(["datetime", "cc_num"], kind="stable")
        .reset_index(drop=True)
    )


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
