"""The three CSV files of the fraud_batch tutorial, generated locally (the tutorial downloads them
from repo.hops.works): ``credit_cards.csv``, ``profiles.csv`` and ``transactions.csv`` with the
same columns and formats. Fraud is planted the way the tutorial's features can see it: bursts of
large purchases far from the card's home, in a short time."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = [
    "Grocery",
    "Restaurant/Cafeteria",
    "Health/Beauty",
    "Domestic Transport",
    "Clothing",
    "Electronics",
]
CITIES = [
    ("Los Angeles", "US", 34.05, -118.24),
    ("Chicago", "US", 41.88, -87.63),
    ("Houston", "US", 29.76, -95.37),
    ("Toronto", "CA", 43.65, -79.38),
    ("Stockholm", "SE", 59.33, 18.07),
    ("Lyon", "FR", 45.76, 4.84),
]
START = datetime(2022, 1, 1)


def write_csv_files(directory: Path, n_cards: int = 100, days: int = 21, seed: int = 11) -> Path:
    """Write the three CSV files into ``directory`` (created); returns it."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    cc_num = 4_444_000_000_000_000 + np.arange(n_cards, dtype=np.int64) * 104_729
    home = rng.integers(0, len(CITIES), n_cards)
    expires = [
        f"{m:02d}/{y % 100:02d}"
        for m, y in zip(rng.integers(1, 13, n_cards), rng.integers(2022, 2027, n_cards), strict=True)
    ]
    pd.DataFrame(
        {"cc_num": cc_num, "provider": rng.choice(["visa", "mastercard"], n_cards), "expires": expires}
    ).to_csv(directory / "credit_cards.csv", index=False)
    birth = [START - timedelta(days=int(d)) for d in rng.integers(18 * 365, 80 * 365, n_cards)]
    pd.DataFrame(
        {
            "name": [f"Card Holder {i}" for i in range(n_cards)],
            "sex": rng.choice(["F", "M"], n_cards),
            "mail": [f"holder{i}@example.com" for i in range(n_cards)],
            "birthdate": [b.strftime("%Y-%m-%d") for b in birth],
            "City": [CITIES[h][0] for h in home],
            "Country": [CITIES[h][1] for h in home],
            "cc_num": cc_num,
        }
    ).to_csv(directory / "profiles.csv", index=False)
    rows = []
    for card, h in zip(cc_num, home, strict=True):
        city, country, lat, lon = CITIES[h]
        for _ in range(rng.poisson(2 * days)):
            moment = START + timedelta(seconds=int(rng.integers(0, days * 86_400)))
            rows.append(
                (
                    moment,
                    card,
                    rng.choice(CATEGORIES),
                    round(float(rng.lognormal(3.3, 0.8)), 2),
                    lat + rng.normal(0, 0.05),
                    lon + rng.normal(0, 0.05),
                    city,
                    country,
                    0,
                )
            )
        if rng.random() < 0.15:  # a stolen card: a burst of large purchases far away
            far = CITIES[(h + 3) % len(CITIES)]
            moment = START + timedelta(seconds=int(rng.integers(0, days * 86_400 - 7_200)))
            for k in range(int(rng.integers(3, 7))):
                rows.append(
                    (
                        moment + timedelta(minutes=11 * k),
                        card,
                        "Electronics",
                        round(float(rng.uniform(500, 2_000)), 2),
                        far[2],
                        far[3],
                        far[0],
                        far[1],
                        1,
                    )
                )
    trans = pd.DataFrame(
        rows,
        columns=[
            "datetime",
            "cc_num",
            "category",
            "amount",
            "latitude",
            "longitude",
            "city",
            "country",
            "fraud_label",
        ],
    )
    trans.insert(0, "tid", [f"{rng.integers(0, 2**63):016x}" for _ in range(len(trans))])
    trans["datetime"] = trans["datetime"].dt.strftime("%Y-%m-%d %H:%M:%S")
    trans.to_csv(directory / "transactions.csv", index=False)
    return directory
