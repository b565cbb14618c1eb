"""Iris flower training pipeline, ported from the serverless-ml course (src/01-module/
iris-train-pipeline.ipynb) with renames only, except the model is registered by fti's registry
(no joblib/pickle: a safe format) without the confusion-matrix image; see docs/hopsworks.md.

Run it with ``python -m examples.hopsworks_iris.training_pipeline``.
"""

from __future__ import annotations

from typing import Any

from sklearn.metrics import accuracy_score  # noqa: F401 - imported by the tutorial
from sklearn.neighbors import KNeighborsClassifier

import fti


def main(project: fti.Project | None = None) -> dict[str, Any]:
    project = project or fti.connect()
    fs = project.get_feature_store()

    try:
        feature_view = fs.get_feature_view(name="iris", version=1)
    except:  # noqa: E722 - as in the tutorial
        iris_fg = fs.get_feature_group(name="iris", version=1)
        query = iris_fg.select_all()
        feature_view = fs.create_feature_view(
            name="iris",
            version=1,
            description="Read from Iris flower dataset",
            labels=["variety"],
            query=query,
        )

    X_train, X_test, y_train, y_test = feature_view.train_test_split(0.2)

    model = KNeighborsClassifier(n_neighbors=2)
    model.fit(X_train, y_train.values.ravel())

    y_pred = model.predict(X_test)

    from sklearn.metrics import classification_report

    metrics = classification_report(y_test, y_pred, output_dict=True)
    print(metrics)

    from sklearn.metrics import confusion_matrix

    results = confusion_matrix(y_test, y_pred)
    print(results)

    mr = project.get_model_registry()

    input_example = X_train.sample()

    mr.register(
        name="iris",
        model=model,
        metrics={"accuracy": metrics["accuracy"]},
        input_example=input_example,
        description="Iris Flower Predictor",
    )
    return metrics


if __name__ == "__main__":
    main()
