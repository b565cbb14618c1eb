"""The fraud_batch training pipeline, ported from Hopsworks' tutorials
(batch-ai-systems/fraud_batch/2_fraud_batch_training_pipeline.ipynb) with renames only; see
docs/hopsworks.md.

Run it with ``python -m examples.hopsworks_fraud_batch.training_pipeline``.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import seaborn as sns
import xgboost as xgb
from sklearn.metrics import confusion_matrix, f1_score

import fti


def main(project: fti.Project | None = None) -> dict[str, Any]:
    project = project or fti.connect()

    fs = project.get_feature_store()

    # Retrieve feature groups
    trans_fg = fs.get_feature_group(
        name="transactions_fraud_batch_fg",
        version=1,
    )
    window_aggs_fg = fs.get_feature_group(
        name='transactions_4h_aggs_fraud_batch_fg',
        version=1,
    )  # fmt: skip

    # Select features for training data.
    selected_features = trans_fg.select(["fraud_label", "category", "amount", "age_at_transaction", "days_until_card_expires", "loc_delta"])\
        .join(window_aggs_fg.select_all(include_primary_key=False))  # fmt: skip

    # Import transformation functions from Hopsworks.
    from fti.features.builtin_transformations import label_encoder

    # Get or create the 'transactions_view_fraud_batch_fv' feature view
    feature_view = fs.get_or_create_feature_view(
        name='transactions_view_fraud_batch_fv',
        version=1,
        query=selected_features,
        labels=["fraud_label"],
        transformation_functions=[label_encoder("category")],
    )  # fmt: skip

    TEST_SIZE = 0.2

    X_train, X_test, y_train, y_test = feature_view.train_test_split(
        test_size=TEST_SIZE,
    )

    # Sort the X_train DataFrame based on the "datetime" column in ascending order
    X_train = X_train.sort_values("datetime")

    # Reindex the y_train Series to match the order of rows in the sorted X_train DataFrame
    y_train = y_train.reindex(X_train.index)

    # Sort the X_test DataFrame based on the "datetime" column in ascending order
    X_test = X_test.sort_values("datetime")

    # Reindex the y_test Series to match the order of rows in the sorted X_test DataFrame
    y_test = y_test.reindex(X_test.index)

    # Drop the "datetime" column from the X_train DataFrame along the specified axis (axis=1 means columns)
    X_train.drop(["datetime"], axis=1, inplace=True)

    # Drop the "datetime" column from the X_test DataFrame along the specified axis (axis=1 means columns)
    X_test.drop(["datetime"], axis=1, inplace=True)

    # Create an instance of the XGBClassifier
    model = xgb.XGBClassifier()

    # Fit the classifier on the training data
    model.fit(X_train, y_train)

    # Predict the training data using the trained classifier
    y_pred_train = model.predict(X_train)  # noqa: F841 - as in the tutorial

    # Predict the test data using the trained classifier
    y_pred_test = model.predict(X_test)

    # Compute f1 score
    metrics = {
        "f1_score": f1_score(y_test, y_pred_test, average='macro')
    }  # fmt: skip

    # Generate the confusion matrix using the true labels (y_test) and predicted labels (y_pred_test)
    results = confusion_matrix(y_test, y_pred_test)

    # Print the confusion matrix
    print(results)

    # Create a DataFrame for the confusion matrix results
    df_cm = pd.DataFrame(
        results,
        ['True Normal', 'True Fraud'],
        ['Pred Normal', 'Pred Fraud'],
    )  # fmt: skip

    # Create a heatmap using seaborn with annotations
    cm = sns.heatmap(df_cm, annot=True)

    # Get the figure and display it
    figure_cm = cm.get_figure()
    figure_cm.show()

    # Specify the directory where the model will be saved
    model_dir = "fraud_batch_model"

    # Check if the directory exists, and create it if it doesn't
    if not os.path.isdir(model_dir):
        os.mkdir(model_dir)

    # Save the trained XGBoost model using the save_model method
    model.save_model(model_dir + "/model.json")

    # Save the confusion matrix image with the model
    images_dir = model_dir + "/images"
    if not os.path.isdir(images_dir):
        os.mkdir(images_dir)
    figure_cm.savefig(images_dir + "/confusion_matrix.png")

    # Get the model registry
    mr = project.get_model_registry()

    # Create a new model in the model registry
    fraud_model = mr.python.create_model(
        name="xgboost_fraud_batch_model",     # Name for the model
        description="Fraud Batch Predictor",  # Description of the model
        metrics=metrics,                      # Metrics used for evaluation
        input_example=X_train.sample(),       # Example input data for reference
        feature_view=feature_view,            # Add a feature view to the model
    )  # fmt: skip

    # Save the model to the specified directory
    fraud_model.save(model_dir)
    return {"metrics": metrics, "model": fraud_model, "X_train": X_train, "confusion_matrix": results}


if __name__ == "__main__":
    main()
