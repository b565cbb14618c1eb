"""The fraud_batch batch inference, ported from Hopsworks' tutorials
(batch-ai-systems/fraud_batch/3_fraud_batch_inference.ipynb) with renames only; see
docs/hopsworks.md.

Run it with ``python -m examples.hopsworks_fraud_batch.batch_inference``.
"""

from __future__ import annotations

from typing import Any

from xgboost import XGBClassifier

import fti


def main(project: fti.Project | None = None) -> dict[str, Any]:
    project = project or fti.connect()

    # Get the model registry
    mr = project.get_model_registry()

    # Retrieve the model from the model registry
    retrieved_model = mr.get_model(
        name="xgboost_fraud_batch_model",
        version=1,
    )

    # Download the saved model files to a local directory
    saved_model_dir = retrieved_model.download()

    # Initialize the model
    model = XGBClassifier()

    # Load the model from a saved JSON file
    model.load_model(saved_model_dir + "/model.json")

    # Retrieve the 'transactions_view_fraud_batch_fv' feature view
    feature_view = retrieved_model.get_feature_view()

    # Initialize batch scoring
    feature_view.init_batch_scoring(1)

    # Get the untransformed and untransformed batch data for logging
    untransformed_batch_data = feature_view.get_batch_data(transformed=False)
    transformed_batch_data = feature_view.get_batch_data()

    # Drop the "datetime" column from the batch_data DataFrame along the specified axis (axis=1 means columns)
    batch_data = transformed_batch_data.drop(["datetime"], axis=1)

    # Use the retrieved XGBoost model to make predictions on the batch data
    predictions = model.predict(batch_data)

    # log both transformed and untransformed features
    feature_view.log(
        untransformed_batch_data.head(1000),
        predictions[:1000],
        training_dataset_version=1,
        model=retrieved_model,
    )
    feature_view.log(transformed_features=transformed_batch_data.head(1000), predictions=predictions[:1000], training_dataset_version=1, model=retrieved_model)  # fmt: skip

    # stop the job materialization schedule and materialize log manually
    feature_view.pause_logging()
    feature_view.materialize_log(wait=True)

    # read untransformed log
    untransformed_log = feature_view.read_log()

    # read transformed log
    transformed_log = feature_view.read_log(transformed=True)
    return {
        "untransformed_batch_data": untransformed_batch_data,
        "batch_data": batch_data,
        "predictions": predictions,
        "log": untransformed_log,
        "transformed_log": transformed_log,
    }


if __name__ == "__main__":
    main()
