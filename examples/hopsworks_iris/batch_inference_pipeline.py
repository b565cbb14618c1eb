"""Iris flower batch inference, ported from the serverless-ml course (src/01-module/
iris-batch-inference-pipeline.ipynb) with renames only, plus skops instead of joblib (a safe
format, not a pickle), and no images are written; see docs/hopsworks.md.

Run it with ``python -m examples.hopsworks_iris.batch_inference_pipeline``.
"""

from __future__ import annotations

from typing import Any

import skops.io as sio

import fti


def main(project: fti.Project | None = None) -> dict[str, Any]:
    project = project or fti.connect()
    fs = project.get_feature_store()

    mr = project.get_model_registry()
    model = mr.get_model("iris", version=1)
    model_dir = model.download()
    # skops names the types it constructs; fti checked them at registration and download() the digests
    model = sio.load(
        model_dir + "/iris_model.skops", trusted=sio.get_untrusted_types(file=model_dir + "/iris_model.skops")
    )

    feature_view = fs.get_feature_view(name="iris", version=1)

    batch_data = feature_view.get_batch_data()

    y_pred = model.predict(batch_data)

    # the latest flower: get_batch_data returns the rows in the order they were written
    flower = y_pred[y_pred.size - 1]

    iris_fg = fs.get_feature_group(name="iris", version=1)
    df = iris_fg.read()

    label = df.iloc[-1]["variety"]

    monitor_fg = fs.get_or_create_feature_group(
        name="iris_predictions",
        version=1,
        primary_key=["datetime"],
        description="Iris flower Prediction/Outcome Monitoring",
    )

    from datetime import datetime

    now = datetime.now().strftime("%m/%d/%Y, %H:%M:%S")

    import pandas as pd

    data = {
        "prediction": [flower],
        "label": [label],
        "datetime": [now],
    }
    monitor_df = pd.DataFrame(data)
    monitor_fg.insert(monitor_df)

    history_df = monitor_fg.read()

    df_recent = history_df.tail(5)

    from sklearn.metrics import confusion_matrix

    predictions = history_df[["prediction"]]
    labels = history_df[["label"]]

    results = confusion_matrix(labels, predictions)
    print(results)
    return {
        "batch_data": batch_data,
        "flower": flower,
        "label": label,
        "history": history_df,
        "recent": df_recent,
        "confusion_matrix": results,
    }


if __name__ == "__main__":
    main()
