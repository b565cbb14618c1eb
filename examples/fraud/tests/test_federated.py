"""The fraud example's federated variant, small: four card providers as parties."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import fti
from examples.fraud import federated
from examples.fraud.features import haversine_km
from examples.fraud.generator import CITIES, generate_profiles

CARDS, DAYS = 300, 21


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fti.Project]:
    home: Path = tmp_path_factory.mktemp("fraud_federated") / "home"
    proj = fti.connect(home=home)
    federated.prepare(proj, CARDS, DAYS)
    yield proj
    proj.close()


def test_regions_are_the_nearest_city_and_differ_in_size() -> None:
    profiles = generate_profiles(2000, seed=7)
    regions = federated.region_of(profiles["home_lat"], profiles["home_lon"])
    nearest = np.argmin(
        haversine_km(
            profiles["home_lat"].to_numpy()[:, None],
            profiles["home_lon"].to_numpy()[:, None],
            CITIES[None, :, 0],
            CITIES[None, :, 1],
        ),
        axis=1,
    )
    assert regions.tolist() == [federated.CITY_REGIONS[i] for i in nearest]
    counts = {r: int((regions == r).sum()) for r in federated.REGIONS}
    assert len(counts) == 10 and min(counts.values()) > 0
    assert max(counts.values()) > 3 * min(counts.values())  # one to four cities per region


def test_federated_training_across_providers(project: fti.Project) -> None:
    report = federated.train(project, rounds=10, partition_by="provider")
    regions = report.regions
    assert set(regions.index) == {"visa", "mastercard", "amex", "discover"}
    assert regions["train_rows"]["visa"] > 3 * regions["train_rows"]["discover"]  # unequal parties
    assert (regions["fraud_rate"] > 0).all()
    assert report.federated_auc > 0.9 and report.centralized_auc > 0.9
    model = project.model_registry.get_model(federated.MODEL)
    assert model.version == report.model_version and model.metrics["auc"] == report.federated_auc
    assert model.feature_view_name == federated.FEATURE_VIEW
    run = model.lineage.run
    assert run is not None and run.params["partition_by"] == "provider"
    assert set(run.params["partitions"]) == set(regions.index)
    assert "federated AUC" in str(report)
