"""The fraud_batch feature pipeline, ported from Hopsworks' tutorials
(batch-ai-systems/fraud_batch/1_fraud_batch_feature_pipeline.ipynb) with renames only, except:
the CSV files are generated locally (:mod:`.data`), Great Expectations' imports name
:mod:`fti.features.expectations` and ``applymap`` is pandas 3's ``map``; see docs/hopsworks.md.

Run it with ``python -m examples.hopsworks_fraud_batch.feature_pipeline``.
"""

from __future__ import annotations

import tempfile
from math import radians
from pathlib import Path

import numpy as np
import pandas as pd

import fti
from examples.hopsworks_fraud_batch import data
from examples.hopsworks_fraud_batch.features import transactions_fraud, window_aggs


def main(project: fti.Project | None = None, data_dir: Path | None = None) -> dict[str, pd.DataFrame]:
    data_dir = data_dir or data.write_csv_files(Path(tempfile.mkdtemp(prefix="card_fraud_data-")))

    # Read the CSV file containing credit card data
    credit_cards_df = pd.read_csv(
        data_dir / "credit_cards.csv",
    )

    # Read the CSV file containing profile data
    # Parse the "birthdate" column as datetime
    profiles_df = pd.read_csv(
        data_dir / "profiles.csv",
        parse_dates=["birthdate"],
    )

    # Read the CSV file containing transaction data
    # Parse the "datetime" column as datetime
    trans_df = pd.read_csv(
        data_dir / "transactions.csv",
        parse_dates=["datetime"],
    )

    # Compute age at transaction.
    trans_df = transactions_fraud.get_age_at_transaction(
        trans_df,
        profiles_df,
    )

    # Compute days until card expires.
    trans_df = transactions_fraud.get_days_until_card_expires(
        trans_df,
        credit_cards_df,
    )

    # Drop duplicate rows in the trans_df DataFrame based on the "datetime" column
    trans_df = trans_df.drop_duplicates(["datetime"])

    # Sort the trans_df DataFrame based on the "datetime" column in ascending order
    trans_df.sort_values("datetime", inplace=True)

    # Apply the radians function to the "longitude" and "latitude" columns in the trans_df DataFrame
    # This is a common preprocessing step for geographical data
    trans_df[["longitude", "latitude"]] = trans_df[["longitude", "latitude"]].map(radians)

    # Create a new column "loc_delta" in trans_df representing the haversine distance between consecutive transactions for each credit card
    trans_df["loc_delta"] = trans_df.groupby("cc_num")\
        .apply(lambda x: transactions_fraud.haversine(x["longitude"], x["latitude"]))\
        .reset_index(level=0, drop=True)\
        .fillna(0)  # fmt: skip

    # Specify the window length as "4h" (4 hours)
    window_len = "4h"

    # Use the window_aggs.get_window_aggs_df function to calculate aggregated features for each window in trans_df
    window_aggs_df = window_aggs.get_window_aggs_df(window_len, trans_df)

    # Convert the "datetime" values in the trans_df DataFrame to microseconds since the epoch
    trans_df.datetime = trans_df.datetime.values.astype(np.int64) // 10**6

    # Convert the "datetime" values in the window_aggs_df DataFrame to microseconds since the epoch
    window_aggs_df.datetime = window_aggs_df.datetime.values.astype(np.int64) // 10**6

    import fti.features.expectations as ge
    from fti.features.expectations import ExpectationConfiguration, ExpectationSuite  # noqa: F401

    # Convert the 'trans_df' DataFrame to a Great Expectations DataFrame
    ge_trans_df = ge.from_pandas(trans_df)

    # Retrieve the expectation suite associated with the ge DataFrame
    expectation_suite_transactions = ge_trans_df.get_expectation_suite()

    # Set the expectation suite name to "transactions_suite"
    expectation_suite_transactions.expectation_suite_name = "transactions_suite"

    # Check binary fraud_label column to be in set [0,1]
    expectation_suite_transactions.add_expectation(
        ExpectationConfiguration(
            expectation_type="expect_column_distinct_values_to_be_in_set",
            kwargs={
                "column": "fraud_label",
                "value_set": [0, 1],
            },
        )
    )

    # Check amount column to be not negative
    expectation_suite_transactions.add_expectation(
        ExpectationConfiguration(
            expectation_type="expect_column_values_to_be_between",
            kwargs={
                "column": "amount",
                "min_value": 0.0,
            },
        )
    )

    # Loop through specified columns ('tid', 'datetime', 'cc_num') and add expectations for null values
    for column in ["tid", "datetime", "cc_num"]:
        expectation_suite_transactions.add_expectation(
            ExpectationConfiguration(
                expectation_type="expect_column_values_to_be_null",
                kwargs={
                    "column": column,
                    "mostly": 0.0,
                }
            )
        )  # fmt: skip

    project = project or fti.connect()

    fs = project.get_feature_store()

    # Get or create the 'transactions_fraud_batch_fg' feature group
    trans_fg = fs.get_or_create_feature_group(
        name="transactions_fraud_batch_fg",
        version=1,
        description="Transaction data",
        primary_key=["cc_num"],
        event_time="datetime",
        expectation_suite=expectation_suite_transactions,
    )

    # Insert data into feature group
    trans_fg.insert(trans_df)
    print("✅ Done!")

    # Update feature descriptions
    feature_descriptions = [
        {"name": "tid", "description": "Transaction id"},
        {"name": "datetime", "description": "Transaction time"},
        {"name": "cc_num", "description": "Number of the credit card performing the transaction"},
        {"name": "category", "description": "Expense category"},
        {"name": "amount", "description": "Dollar amount of the transaction"},
        {"name": "latitude", "description": "Transaction location latitude"},
        {"name": "longitude", "description": "Transaction location longitude"},
        {"name": "city", "description": "City in which the transaction was made"},
        {"name": "country", "description": "Country in which the transaction was made"},
        {"name": "fraud_label", "description": "Whether the transaction was fraudulent or not"},
        {"name": "age_at_transaction", "description": "Age of the card holder when the transaction was made"},
        {"name": "days_until_card_expires", "description": "Card validity days left when the transaction was made"},
        {"name": "loc_delta", "description": "Haversine distance between this transaction location and the previous transaction location from the same card"},
    ]  # fmt: skip

    for desc in feature_descriptions:
        trans_fg.update_feature_description(desc["name"], desc["description"])

    # Get or create the 'transactions' feature group with specified window aggregations
    window_aggs_fg = fs.get_or_create_feature_group(
        name=f"transactions_{window_len}_aggs_fraud_batch_fg",
        version=1,
        description=f"Aggregate transaction data over {window_len} windows.",
        primary_key=["cc_num"],
        event_time="datetime",
    )

    # Insert data into feature group
    window_aggs_fg.insert(window_aggs_df)
    print("✅ Done!")

    # Update feature descriptions
    feature_descriptions = [
        {"name": "datetime", "description": "Transaction time"},
        {"name": "cc_num", "description": "Number of the credit card performing the transaction"},
        {"name": "loc_delta_mavg", "description": "Moving average of location difference between consecutive transactions from the same card"},
        {"name": "trans_freq", "description": "Moving average of transaction frequency from the same card"},
        {"name": "trans_volume_mavg", "description": "Moving average of transaction volume from the same card"},
        {"name": "trans_volume_mstd", "description": "Moving standard deviation of transaction volume from the same card"},
    ]  # fmt: skip

    for desc in feature_descriptions:
        window_aggs_fg.update_feature_description(desc["name"], desc["description"])
    return {"transactions": trans_df, "window_aggs": window_aggs_df}


if __name__ == "__main__":
    main()
