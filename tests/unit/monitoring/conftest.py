"""A small enriched deployment with an inference log written through the server's own code path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
CITIES = ["oslo", "lima", "rome"]


class Served:
    """Sends requests to deployment ``fraud`` in-process (the server's prepare/predict path) and
    logs them with the server's RequestLogger, at chosen times."""

    def __init__(self, project: fti.Project) -> None:
        from fti.serving.metrics import ServerMetrics
        from fti.serving.repository import load_model
        from fti.serving.request_log import RequestLogger

        self.project = project
        self.loaded = load_model(project, project.serving.get("fraud").spec)
        self.logger = RequestLogger(project, ServerMetrics())

    def send(
        self,
        when: datetime,
        cards: list[int],
        amounts: list[float] | None = None,
        cities: list[str] | None = None,
    ) -> list[str]:
        """One request per card at time ``when``; returns the request ids."""
        from fti.serving.protocol import parse_infer_request
        from fti.serving.request_log import InferenceRecord

        ids = []
        for i, card in enumerate(cards):
            inputs = [{"name": "cc_num", "shape": [1], "datatype": "INT64", "data": [card]}]
            if amounts is not None:
                inputs.append({"name": "amount", "shape": [1], "datatype": "FP64", "data": [amounts[i]]})
            if cities is not None:
                inputs.append({"name": "city", "shape": [1], "datatype": "BYTES", "data": [cities[i]]})
            request_id = uuid.uuid4().hex
            prepared = self.loaded.prepare(parse_infer_request({"id": request_id, "inputs": inputs}))
            outputs = self.loaded.predict(prepared.matrix)
            names = [s.name for s in self.loaded.signature.inputs]
            self.logger.log(
                InferenceRecord(
                    "fraud",
                    "fraud",
                    self.loaded.version,
                    request_id,
                    when,
                    names,
                    prepared.matrix,
                    outputs,
                    prepared.logged,
                )
            )
            ids.append(request_id)
        self.logger.flush()
        return ids


def build_system(home: Any) -> dict[str, Any]:
    """Cards with amount, city and a fraud label; a feature view; a logistic regression trained
    on a random split; the enriched deployment ``fraud`` with request logging."""
    from sklearn.linear_model import LogisticRegression

    project = fti.connect(home=home)
    fs = project.feature_store
    rng = np.random.default_rng(0)
    n = 3000
    cards = fs.get_or_create_feature_group(
        "cards", primary_key=["cc_num"], event_time="ts", online_enabled=True
    )
    amount = rng.gamma(2.0, 30.0, n)
    city = rng.choice(CITIES, n, p=[0.5, 0.3, 0.2])
    logit = (amount - 60) / 25 + np.where(city == "rome", 1.0, -0.5)
    fraud = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    cards.insert(
        pd.DataFrame(
            {
                "cc_num": np.arange(n),
                "ts": [T0 - timedelta(days=30) + timedelta(minutes=10 * i) for i in range(n)],
                "amount": amount,
                "city": city,
                "is_fraud": fraud,
            }
        )
    )
    fv = fs.get_or_create_feature_view(
        "fraud",
        query=cards.select(["amount", "city", "is_fraud"]),
        labels=["is_fraud"],
        transformations={"amount": "standard_scaler", "city": "one_hot_encoder"},
    )
    x_train, _x_test, y_train, _ = fv.train_test_split(test_size=0.3, seed=1)
    model = LogisticRegression().fit(x_train.to_numpy(), y_train.to_numpy())
    project.model_registry.register(
        "fraud", model, feature_view=fv, training_dataset_version=1, input_example=x_train.head(5)
    )
    project.model_registry.set_alias("fraud", 1, "production")
    project.serving.deploy("fraud", model="fraud@production", enrich=True, log_requests=True)
    served = Served(project)
    return {"project": project, "fv": fv, "model": model, "served": served, "rng": rng, "n": n}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    built = build_system(tmp_path_factory.mktemp("monitoring") / "home")
    yield built
    built["project"].close()


def _normal(system: dict[str, Any], when: Any, n: int = 300, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return system["served"].send(when, [int(c) for c in rng.integers(0, system["n"], n)])


def _drifted(system: dict[str, Any], when: Any, n: int = 300, seed: int = 2) -> list[str]:
    """Amounts three times larger and a city the model never saw, passed with each request."""
    rng = np.random.default_rng(seed)
    cards = [int(c) for c in rng.integers(0, system["n"], n)]
    return system["served"].send(
        when, cards, amounts=list(rng.gamma(2.0, 90.0, n)), cities=list(rng.choice(["oslo", "paris"], n))
    )


def log_windows(system: dict[str, Any]) -> dict[str, Any]:
    """Hour 0: like the training data; hour 1: drifted; hour 2: empty."""
    return {
        "normal": _normal(system, T0 + timedelta(minutes=7)),
        "drifted": _drifted(system, T0 + HOUR + timedelta(minutes=3)),
    }


@pytest.fixture(scope="module")
def windows(system: dict[str, Any]) -> dict[str, Any]:
    return log_windows(system)
