"""The fraud system, federated: one model trained across regions whose transactions never meet.

Each region's card issuer keeps its own transactions; here a region is the home region of the
card (ten US regions of one to four cities each, derived deterministically from the card's home
location), so the partitions differ in size and in fraud rate, as real parties do. Every region
gets a Flower client process that reads only its own rows of the training dataset, transforms
them with statistics combined from every region's sufficient statistics, trains a logistic
regression (scikit-learn ``SGDClassifier``) and sends weights; the server averages them.

Run it: ``python -m examples.fraud.federated --cards 1000 --days 90`` (a fresh project under
``$FTI_HOME``, default ``./.fti-fraud-federated``) prints each region's size, fraud rate and AUC,
the federated model's pooled AUC and a centralized logistic regression's on the same test rows.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from examples.fraud import feature_pipeline, training_pipeline
from examples.fraud.features import ON_DEMAND, haversine_km
from examples.fraud.generator import CITIES, generate_profiles

if TYPE_CHECKING:
    import fti

REGION_GROUP = "card_regions"
FEATURE_VIEW = "fraud_federated"
MODEL = "fraud_federated"
PARTITION = "region"

# the region of each city in generator.CITIES (same order)
CITY_REGIONS = (
    "northeast",  # New York
    "california",  # Los Angeles
    "great_lakes",  # Chicago
    "texas",  # Houston
    "southwest",  # Phoenix
    "mid_atlantic",  # Philadelphia
    "texas",  # San Antonio
    "california",  # San Diego
    "texas",  # Dallas
    "california",  # San Jose
    "texas",  # Austin
    "southeast",  # Jacksonville
    "california",  # San Francisco
    "great_lakes",  # Columbus
    "southeast",  # Charlotte
    "great_lakes",  # Indianapolis
    "northwest",  # Seattle
    "mountain",  # Denver
    "mid_atlantic",  # Washington
    "northeast",  # Boston
    "southwest",  # Las Vegas
    "northwest",  # Portland
    "southeast",  # Miami
    "southeast",  # Atlanta
    "north_central",  # Minneapolis
)
REGIONS = tuple(sorted(set(CITY_REGIONS)))

FEATURES = {
    "transactions": [*training_pipeline.SPINE_COLUMNS, training_pipeline.LABEL],
    "card_windows": [
        "tx_count_1h",
        "tx_count_1d",
        "amount_sum_1h",
        "amount_mean_7d",
        "last_datetime",
        "last_lat",
        "last_lon",
    ],
    "card_profiles": ["provider", "credit_limit", *training_pipeline.HOME],
    REGION_GROUP: [PARTITION],
}
# a linear model needs features on comparable scales: log amounts, standardized counts and
# distances, one-hot categories (statistics combined from the regions, never pooled rows)
TRANSFORMATIONS = {
    "amount": "log1p",
    "amount_bin": "one_hot_encoder",
    "category_code": "one_hot_encoder",
    "seconds_since_prev": "standard_scaler",
    "km_from_prev": "standard_scaler",
    "km_from_home": "standard_scaler",
    "tx_count_1h": "standard_scaler",
    "tx_count_1d": "standard_scaler",
    "amount_sum_1h": "log1p",
    "amount_mean_7d": "log1p",
    "provider": "one_hot_encoder",
    "credit_limit": "standard_scaler",
    PARTITION: "one_hot_encoder",
}


def region_of(lat: Any, lon: Any) -> np.ndarray:
    """The region of the city nearest to each home location."""
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    distances = haversine_km(lat[:, None], lon[:, None], CITIES[None, :, 0], CITIES[None, :, 1])
    return np.array(CITY_REGIONS)[np.argmin(distances, axis=1)]


def ingest_regions(
    project: fti.Project,
    cards: int = feature_pipeline.DEFAULT_CARDS,
    seed: int = feature_pipeline.DEFAULT_SEED,
) -> int:
    """Upsert each card's home region (a static attribute, like the profile)."""
    profiles = generate_profiles(cards, seed)
    rows = pd.DataFrame(
        {"cc_num": profiles["cc_num"], PARTITION: region_of(profiles["home_lat"], profiles["home_lon"])}
    )
    group = project.feature_store.get_or_create_feature_group(
        REGION_GROUP, version=1, primary_key=["cc_num"], description="Home region of each card's holder"
    )
    return group.insert(rows).rows


def feature_view(project: fti.Project) -> Any:
    """Transactions with windows, profile and region, point-in-time joined; label ``is_fraud``."""
    groups = feature_pipeline.feature_groups(project)
    regions = project.feature_store.get_feature_group(REGION_GROUP, 1)
    query = (
        groups.transactions.select(FEATURES["transactions"])
        .join(groups.windows.select(FEATURES["card_windows"]), on=["cc_num"])
        .join(groups.profiles.select(FEATURES["card_profiles"]), on=["cc_num"])
        .join(regions.select(FEATURES[REGION_GROUP]), on=["cc_num"])
    )
    return project.feature_store.get_or_create_feature_view(
        FEATURE_VIEW,
        version=1,
        query=query,
        labels=[training_pipeline.LABEL],
        transformations=TRANSFORMATIONS,
        on_demand=list(ON_DEMAND),
        description="The fraud features for a linear model, with the card's home region as partition",
    )


@dataclass(frozen=True)
class Report:
    """What the federated run did, next to a centralized model on the same rows."""

    regions: pd.DataFrame
    """Per region: training rows, fraud rate, test rows, the federated model's AUC on its test rows."""
    federated_auc: float
    centralized_auc: float
    rounds: int
    seconds: float
    bytes_per_round: float
    model_version: int

    def __str__(self) -> str:
        return (
            f"{self.regions.to_string(float_format=lambda v: f'{v:.4f}')}\n\n"
            f"federated AUC (pooled over all regions' test rows): {self.federated_auc:.4f}\n"
            f"centralized logistic regression on the pooled rows:  {self.centralized_auc:.4f}\n"
            f"{self.rounds} rounds in {self.seconds:.1f} s, {self.bytes_per_round:,.0f} bytes per round; "
            f"registered {MODEL}:{self.model_version}"
        )


def train(
    project: fti.Project,
    rounds: int = 20,
    strategy: str = "fedavg",
    learning_rate: float = 0.05,
    partition_by: str = PARTITION,
) -> Report:
    """Train across the regions (or another partition column of the view, such as ``provider``)
    with a time split (the last quarter is the test set), register the model, and compare it
    with a logistic regression trained centrally on the same training rows."""
    import fti
    from fti.training import SGDClassifierSpec

    fv = feature_view(project)
    start_of_test = training_pipeline.split_time(project)
    result = fti.training.federated(
        fv,
        partition_by=partition_by,
        model=SGDClassifierSpec(learning_rate=learning_rate, alpha=1e-5),
        rounds=rounds,
        strategy=strategy,
        split="time",
        test_start=start_of_test,
        run_name="fraud-federated",
    )
    version = project.model_registry.register(
        MODEL,
        model=result.model,
        run=result.run,
        metrics=result.metrics,
        feature_view=fv,
        training_dataset_version=result.training_dataset_version,
        description=f"logistic regression, federated over {len(result.partitions)} regions",
    )
    last = result.rounds[-1].clients
    regions = pd.DataFrame(
        {
            "train_rows": {r: p["rows"]["train"] for r, p in result.partitions.items()},
            "fraud_rate": {
                r: p["positives"]["train"] / p["rows"]["train"] for r, p in result.partitions.items()
            },
            "test_rows": {r: p["rows"].get("test", 0) for r, p in result.partitions.items()},
            "auc": {r: last[r].get("auc", float("nan")) for r in result.partitions},
        }
    ).rename_axis(partition_by)
    return Report(
        regions=regions,
        federated_auc=result.metrics["auc"],
        centralized_auc=centralized_auc(fv, result.training_dataset_version),
        rounds=len(result.rounds),
        seconds=result.seconds,
        bytes_per_round=result.bytes_per_round,
        model_version=version.version,
    )


def centralized_auc(fv: Any, training_dataset_version: int) -> float:
    """The reference a federation gives up: logistic regression on all regions' rows pooled."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    X_train, X_test, y_train, y_test = fv.get_training_data(training_dataset_version)
    model = LogisticRegression(max_iter=2000).fit(X_train.fillna(0.0), y_train)
    return float(roc_auc_score(y_test, model.predict_proba(X_test.fillna(0.0))[:, 1]))


def prepare(project: fti.Project, cards: int, days: int, seed: int = feature_pipeline.DEFAULT_SEED) -> None:
    """Ingest the example's source data: profiles, regions, ``days`` of transactions."""
    from datetime import timedelta

    from examples.fraud.generator import DATA_START

    feature_pipeline.ingest_profiles(project, cards, seed)
    ingest_regions(project, cards, seed)
    feature_pipeline.ingest_transactions(project, DATA_START, DATA_START + timedelta(days=days), cards, seed)


def main(argv: list[str] | None = None) -> None:
    import os

    import fti

    parser = argparse.ArgumentParser(description="Federated training of the fraud model across regions.")
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--strategy", choices=["fedavg", "fedprox"], default="fedavg")
    parser.add_argument("--partition-by", choices=[PARTITION, "provider"], default=PARTITION)
    args = parser.parse_args(argv)
    with fti.connect(home=os.environ.get("FTI_HOME", ".fti-fraud-federated")) as project:
        prepare(project, args.cards, args.days)
        print(train(project, rounds=args.rounds, strategy=args.strategy, partition_by=args.partition_by))


if __name__ == "__main__":
    main()
