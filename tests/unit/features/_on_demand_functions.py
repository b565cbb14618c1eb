"""On-demand functions of the on-demand tests: importable by path, as a user's module would be."""

from __future__ import annotations

from typing import Any

import numpy as np

import fti


@fti.on_demand(inputs=["amount"], outputs={"amount_bin": "int64"})
def amount_bin(amount: Any) -> Any:
    return np.searchsorted(np.array([10.0, 50.0, 100.0]), amount, side="right")


@fti.on_demand(
    inputs=["ts", "lat", "lon", "last_ts", "last_lat", "last_lon", "home_lat", "home_lon"],
    outputs={"gap_s": "float64", "km_prev": "float64", "km_home": "float64"},
    drop=["lat", "lon", "last_ts", "last_lat", "last_lon", "home_lat", "home_lon"],
)
def movement(
    ts: Any, lat: Any, lon: Any, last_ts: Any, last_lat: Any, last_lon: Any, home_lat: Any, home_lon: Any
) -> Any:
    gap = (ts - last_ts) / np.timedelta64(1, "s")  # NaT (no earlier transaction) gives NaN
    seen = ~np.isnan(gap)
    km_prev = np.where(seen, _km(lat, lon, np.where(seen, last_lat, lat), np.where(seen, last_lon, lon)), 0.0)
    return np.where(seen, gap, -1.0), km_prev, _km(lat, lon, home_lat, home_lon)


def _km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@fti.on_demand(inputs=["category", "amount_bin"], outputs={"tag": "string", "bin_sq": "float64"})
def tag(category: Any, amount_bin: Any) -> Any:
    """Reads an earlier function's output and returns a dict by output name."""
    return {
        "bin_sq": amount_bin.astype(np.float64) ** 2,
        "tag": np.array([f"{c}:{b}" for c, b in zip(category, amount_bin, strict=True)], dtype=object),
    }


@fti.on_demand(inputs=["amount"], outputs={"boom": "float64"})
def raises(amount: Any) -> Any:
    raise ZeroDivisionError("no amounts today")


@fti.on_demand(inputs=["amount"], outputs={"short": "float64"})
def wrong_length(amount: Any) -> Any:
    return amount[:-1]


@fti.on_demand(inputs=["amount"], outputs={"text": "float64"})
def wrong_dtype(amount: Any) -> Any:
    return np.array([str(a) for a in amount])


@fti.on_demand(inputs=["is_fraud"], outputs={"leak": "float64"})
def reads_label(is_fraud: Any) -> Any:
    return is_fraud


def not_decorated(amount: Any) -> Any:
    return amount


@fti.on_demand(inputs=["amount"], outputs={"log_amount": "float64"})
def log_amount(amount: Any) -> Any:
    if (amount < 0).any():
        raise ValueError("amounts are never negative")
    return np.log1p(amount)


@fti.on_demand(
    inputs=["lat", "lon", "home_lat", "home_lon"],
    outputs={"distance": "float64"},
    drop=["lat", "lon", "home_lat", "home_lon"],
)
def distance(lat: Any, lon: Any, home_lat: Any, home_lon: Any) -> Any:
    return _km(lat, lon, home_lat, home_lon)
