"""Iris flower training pipeline, ported from the serverless-ml course (src/01-module/
iris-train-pipeline.ipynb) with renames only, plus skops instead of joblib (a safe format, not a
pickle); see docs/hopsworks.md.

Run it with ``python -m examples.hopsworks_iris.training_pipeline``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pandas as pd
import seaborn as sns
import skops.io as sio
from sklearn.metrics import accuracy_score  # noqa: F401 - imported by the tutorial
from sklearn.neighbors import KNeighborsClassifier

import fti
from fti.registry.schema import ModelSchema, Schema


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

    # Create the confusion matrix as a figure, we will later store it as a PNG image file
    df_cm = pd.DataFrame(
        results,
        ["True Setosa", "True Versicolor", "True Virginica"],
        ["Pred Setosa", "Pred Versicolor", "Pred Virginica"],
    )
    cm = sns.heatmap(df_cm, annot=True)
    fig = cm.get_figure()
    os.makedirs("assets", exist_ok=True)  # a directory of the tutorial's repository
    fig.savefig("assets/confusion_matrix.png")
    fig.show()

    mr = project.get_model_registry()

    # The 'iris_model' directory will be saved to the model registry
    model_dir = "iris_model"
    if os.path.isdir(model_dir) == False:  # noqa: E712 - as in the tutorial
        os.mkdir(model_dir)
    sio.dump(model, model_dir + "/iris_model.skops")
    shutil.copyfile("assets/confusion_matrix.png", model_dir + "/confusion_matrix.png")

    input_example = X_train.sample()
    input_schema = Schema(X_train)
    output_schema = Schema(y_train)
    model_schema = ModelSchema(input_schema, output_schema)

    iris_model = mr.python.create_model(
        version=1,
        name="iris",
        metrics={"accuracy": metrics["accuracy"]},
        model_schema=model_schema,
        input_example=input_example,
        description="Iris Flower Predictor",
    )

    iris_model.save(model_dir)
    return metrics


if __name__ == "__main__":
    main()
