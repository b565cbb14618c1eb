"""The iris example: the smallest complete FTI system.

- feature pipeline ``iris_features``: loads the iris measurements bundled with scikit-learn into
  the ``iris`` feature group;
- training pipeline ``train_iris`` (runs when the group gets new data): a k-nearest-neighbours
  classifier trained from the ``iris`` feature view, registered with its accuracy and a confusion
  matrix image, evaluated on the test split (per variety and petal length, against the current
  production model on the same rows), promoted to ``iris@production`` when the evaluation passes
  :data:`GATE`, and served by the ``iris`` deployment (sepal/petal measurements in, variety out);
- inference pipeline ``score_iris``: batch scoring of the feature group into ``iris_predictions``.

Register them with ``fti pipelines deploy examples/iris/pipelines.py`` (see the README).
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

# `fti pipelines` imports this file by path: make the repository root importable for `examples.*`
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import fti  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

FEATURE_GROUP = "iris"
FEATURE_VIEW = "iris"
MODEL = "iris"
DEPLOYMENT = "iris"
PREDICTIONS = "iris_predictions"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABEL = "variety"
ACCURACY_FLOOR = 0.9
# the test split holds 30 flowers: every variety is judged, however few rows it has
GATE = {
    "accuracy": [f">= {ACCURACY_FLOOR}", ">= baseline - 0.05"],
    "accuracy@variety": ">= 0.85",  # each variety's flowers (the recall of that class)
}
MEASURED_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def iris_frame() -> pd.DataFrame:
    """The 150 iris flowers: ``id``, ``measured_at``, the four measurements (cm) and ``variety``."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_iris

    bunch = load_iris()
    n = len(bunch.target)
    frame = pd.DataFrame(bunch.data, columns=FEATURES)
    frame.insert(0, "id", np.arange(n, dtype=np.int64))
    frame.insert(1, "measured_at", pd.to_datetime(MEASURED_FROM) + pd.to_timedelta(np.arange(n), unit="min"))
    frame[LABEL] = np.asarray(bunch.target_names)[bunch.target].astype(str)
    return frame


@fti.feature_pipeline(retries=1, timeout="5m")
def iris_features(project: fti.Project) -> None:
    """Load the iris measurements into the ``iris`` feature group (idempotent)."""
    fg = project.feature_store.get_or_create_feature_group(
        FEATURE_GROUP,
        version=1,
        primary_key=["id"],
        event_time="measured_at",
        online_enabled=True,
        description="Iris flowers: sepal and petal length and width in cm, and the variety",
    )
    result = fg.insert(iris_frame())
    print(f"inserted {result.rows} rows into {FEATURE_GROUP!r} (commit {result.version})")


@fti.training_pipeline(trigger=fti.on_new_data(FEATURE_GROUP), timeout="10m")
def train_iris(project: fti.Project, n_neighbors: int = 5) -> None:
    """Train, register, promote and deploy the iris classifier."""
    metrics = train(project, n_neighbors=n_neighbors)
    print(f"iris model trained: {metrics}")


@fti.inference_pipeline(timeout="10m")
def score_iris(project: fti.Project, start: datetime | None = None, end: datetime | None = None) -> None:
    """Score the flowers measured in ``[start, end)`` (default: all) into ``iris_predictions``."""
    rows = score(project, start, end)
    print(f"scored {rows} flowers into {PREDICTIONS!r}")


# --- the work, as plain functions (the pipelines above, the demo and the tests call these) -------
def feature_view(project: fti.Project) -> Any:
    """The ``iris`` feature view: the four measurements, labelled with the variety."""
    fs = project.feature_store
    fg = fs.get_feature_group(FEATURE_GROUP, version=1)
    return fs.get_or_create_feature_view(
        FEATURE_VIEW,
        version=1,
        query=fg.select([*FEATURES, LABEL]),
        labels=[LABEL],
        description="Iris measurements labelled with the variety",
    )


def train(project: fti.Project, n_neighbors: int = 5) -> dict[str, float]:
    """Fit k-NN on a random 80/20 split, register it with metrics and a confusion matrix, evaluate
    it, promote it to ``production`` when the evaluation passes :data:`GATE`, and (re)deploy
    ``iris``. Returns the metrics."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.neighbors import KNeighborsClassifier

    fv = feature_view(project)
    X_train, X_test, y_train, y_test = fv.train_test_split(test_size=0.2, split="random", seed=42)
    with project.run(
        "iris-training", params={"n_neighbors": n_neighbors, "model": "KNeighborsClassifier"}
    ) as run:
        model = KNeighborsClassifier(n_neighbors=n_neighbors).fit(X_train, y_train)
        predicted = model.predict(X_test)
        metrics = {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "f1_macro": float(f1_score(y_test, predicted, average="macro")),
        }
        run.log_metrics(metrics)
        # online vectors use the transformations fitted on this training dataset
        fv.init_serving(training_dataset_version=fv.last_training_dataset_version)
        labels = [str(c) for c in model.classes_]
        mr = project.model_registry
        with tempfile.TemporaryDirectory(prefix="iris-") as tmp:
            image = Path(tmp) / "confusion_matrix.png"
            image.write_bytes(
                confusion_matrix_png(confusion_matrix(y_test, predicted, labels=labels), labels)
            )
            version = mr.register(
                MODEL,
                model,
                run=run,
                feature_view=fv,
                training_dataset_version=fv.last_training_dataset_version,
                metrics=metrics,
                input_example=X_train.head(5),
                description=f"k-NN (k={n_neighbors}) on the iris measurements",
                artifacts={"confusion_matrix.png": image},  # stored and digest-checked with the model
            )
    evaluation = mr.evaluate(
        f"{MODEL}:{version.version}",
        slices=[LABEL, fti.bins("petal_length", [0, 2.5, 5])],
        baseline=f"{MODEL}@production",
        min_rows=1,
    )
    print(evaluation.report())
    mr.promote(MODEL, version.version, "production", require=GATE)
    deploy(project)
    return metrics


def deploy(project: fti.Project) -> Any:
    """The ``iris`` deployment: the four measurements in, ``predict`` (variety) and probabilities out."""
    return project.serving.deploy(DEPLOYMENT, model=f"{MODEL}@production")


def score(project: fti.Project, start: datetime | None = None, end: datetime | None = None) -> int:
    """Batch-score the flowers measured in ``[start, end)`` into ``iris_predictions``; returns rows."""
    from fti.batch import score as batch_score

    result = batch_score(
        project, model=f"{MODEL}@production", start_time=start, end_time=end, output=PREDICTIONS
    )
    return int(result.rows)


def confusion_matrix_png(matrix: Any, labels: list[str]) -> bytes:
    """A PNG image of a confusion matrix (rows: true class, columns: predicted class)."""
    import io

    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    figure = Figure(figsize=(4.5, 4), dpi=100)
    ax = figure.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (row, col), value in np.ndenumerate(matrix):
        dark = value > matrix.max() / 2
        ax.text(col, row, str(value), ha="center", va="center", color="white" if dark else "black")
    ax.set_title("iris: confusion matrix (test split)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def sample_requests() -> list[dict[str, float]]:
    """Three flowers to ask the deployment about (one of each variety)."""
    frame = iris_frame()
    return [
        {name: float(frame.loc[i, name]) for name in FEATURES}  # type: ignore[arg-type]
        for i in (0, 60, 120)
    ]
