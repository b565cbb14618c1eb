"""A/B readout on a real server: a 50/50 split between a good champion and a challenger trained on
flipped labels, labels logged later by request id; the readout's counts, accuracies, intervals and
test are checked against what the clients saw."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import fti
from fti.cli.main import cli
from fti.errors import NotFoundError, ValidationError
from fti.serving.app import create_app
from fti.testing.serving import running_server

FEATURES = ["a", "b", "c"]


@pytest.fixture
def ab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    X, y = make_classification(
        1000, n_features=3, n_informative=3, n_redundant=0, class_sep=2.0, random_state=0
    )
    example = pd.DataFrame(X[:5], columns=FEATURES)
    proj = fti.connect(home=tmp_path / "home")
    mr = proj.model_registry
    mr.register("clf", LogisticRegression().fit(X[:500], y[:500]), input_example=example)
    mr.register("clf", LogisticRegression().fit(X[:500], 1 - y[:500]), input_example=example)  # flipped
    mr.set_alias("clf", 1, "production")
    proj.serving.deploy("clf", model="clf@production", variants={"challenger": ("clf:2", 50)})
    yield {"project": proj, "X": X[500:], "y": y[500:], "home": tmp_path / "home"}
    proj.close()


def test_compare_reads_out_each_variant_with_intervals_and_a_test(ab: dict[str, Any]) -> None:
    proj, X, y = ab["project"], ab["X"], ab["y"]
    served: dict[str, tuple[str, int]] = {}
    with running_server(create_app(proj, poll_interval_s=0.1)) as url:

        def send(i: int) -> None:
            body = {"id": f"r{i}", "inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [float(X[i, j])]}
                                              for j, n in enumerate(FEATURES)]}  # fmt: skip
            r = httpx.post(f"{url}/v2/models/clf/infer", json=body, timeout=30)
            assert r.status_code == 200, r.text
            served[f"r{i}"] = (r.json()["parameters"]["variant"], r.json()["outputs"][0]["data"][0])

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, range(len(X))))
        time.sleep(0.5)  # the per-variant counters reach the catalog at the next poll
    labels = pd.DataFrame({"request_id": [f"r{i}" for i in range(len(X))], "is_fraud": y.astype(np.int64)})
    proj.monitoring.log_labels("clf", labels, label="is_fraud")
    readout = {r.variant: r for r in proj.monitoring.compare("clf")}
    assert list(readout) == ["champion", "challenger"]
    for variant, r in readout.items():
        mine = [(rid, p) for rid, (v, p) in served.items() if v == variant]
        truth = {f"r{i}": int(y[i]) for i in range(len(X))}
        accuracy = sum(p == truth[rid] for rid, p in mine) / len(mine)
        assert (r.requests, r.errors, r.labelled, r.metric) == (len(mine), 0, len(mine), "accuracy")
        assert r.value == pytest.approx(accuracy)
        assert r.ci_low is not None and r.ci_high is not None and r.ci_low < accuracy < r.ci_high
    assert readout["champion"].value > 0.75 and readout["challenger"].value < 0.25
    assert readout["champion"].p_value is None
    assert readout["challenger"].p_value is not None and readout["challenger"].p_value < 1e-6
    assert readout["challenger"].significant is True

    result = CliRunner().invoke(cli, ["--home", str(ab["home"]), "deployments", "compare", "clf", "--json"])
    assert result.exit_code == 0, result.stderr
    assert [r["variant"] for r in json.loads(result.stdout)] == ["champion", "challenger"]
    listed = CliRunner().invoke(cli, ["--home", str(ab["home"]), "deployments", "list"])
    assert "challenger clf:2 50 %" in listed.stdout

    with pytest.raises(NotFoundError, match="deployment 'nope' not found"):
        proj.monitoring.compare("nope")
    with pytest.raises(ValidationError, match="alpha must be a number in"):
        proj.monitoring.compare("clf", alpha=1.5)
    with pytest.raises(ValidationError, match="has no column 'score'"):
        proj.monitoring.compare("clf", prediction="score")


@pytest.mark.parametrize("figure", ["accuracy", "auc"])
def test_a_rollout_gated_on_a_realized_metric_rolls_back_a_worse_candidate(
    ab: dict[str, Any], figure: str
) -> None:
    from datetime import UTC, datetime

    from fti.monitoring.abtest import realized_figures
    from fti.pipelines.scheduler import ManualClock, Scheduler
    from fti.serving.rollouts.machine import advance

    proj, X, y = ab["project"], ab["X"], ab["y"]
    proj.serving.deploy("clf", model="clf@production")  # no split: the rollout makes its own
    ro = proj.serving.rollout("clf", to="clf:2", steps=[50, 100], every="1h",
                              gates={"error_rate": "< 0.01", figure: ">= champion - 0.05"}, min_requests=20)  # fmt: skip
    with (
        running_server(create_app(proj, poll_interval_s=0.1)) as url,
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        for i in range(200):
            body = {"id": f"q{i}", "inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [float(X[i, j])]}
                                              for j, n in enumerate(FEATURES)]}  # fmt: skip
            assert c.post("/v2/models/clf/infer", json=body).status_code == 200
        time.sleep(0.5)
    scheduler = Scheduler(
        proj, clock=ManualClock(datetime.now(UTC)), duties=[lambda now: advance(proj, now, realized_figures)]
    )
    scheduler.tick()  # no labels yet: the realized gate cannot judge, the error rate passes
    assert ro.status()["state"] == "running"
    proj.monitoring.log_labels("clf", pd.DataFrame({"request_id": [f"q{i}" for i in range(200)],
                                                    "is_fraud": y[:200].astype(np.int64)}), label="is_fraud")  # fmt: skip
    scheduler.tick()
    status = ro.status()
    assert status["state"] == "rolled_back" and figure in status["reason"]
    figures = status["events"][-1]["figures"]
    # the challenger learned flipped labels: its accuracy and its AUC (from the logged
    # predict_proba of the positive class) are near 0 where the champion's are near 1
    assert figures["canary"][figure] < 0.25 < 0.75 < figures["champion"][figure]
    assert figures["canary"]["labelled"] + figures["champion"]["labelled"] == 200
    assert proj.model_registry.aliases("clf") == {"production": 1}
