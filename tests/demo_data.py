"""The demo's data for UI tests: the iris and fraud systems built in one home (small fraud data).

The pipelines of both examples are deployed; ``iris_features`` runs once as a recorded pipeline
run (a real subprocess), the rest is called directly to keep the build to well under a minute.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import fti
from examples.fraud import feature_pipeline, inference, training_pipeline
from examples.fraud.generator import DATA_START
from examples.iris import pipelines as iris

CARDS, DAYS = 120, 14
REPO = Path(__file__).resolve().parents[1]


def build(home: Path) -> None:
    """Create the iris and fraud systems in ``home`` (the project ``default``)."""
    with fti.connect(home=home) as project:
        project.pipelines.deploy(REPO / "examples" / "iris" / "pipelines.py")
        project.pipelines.deploy(REPO / "examples" / "fraud" / "pipelines.py")
        run = project.pipelines.run("iris_features")
        assert run.status == "succeeded", project.pipelines.logs(run.id)
        iris.train(project)
        iris.score(project)
        end = DATA_START + timedelta(days=DAYS)
        feature_pipeline.ingest_profiles(project, CARDS)
        feature_pipeline.ingest_transactions(project, DATA_START, end, CARDS)
        training_pipeline.train(project, max_iter=60)
        inference.score(project, end - timedelta(days=2), end)
