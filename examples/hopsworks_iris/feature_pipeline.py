"""Iris flower feature pipeline, ported from the serverless-ml course (src/01-module/
iris-feature-pipeline.ipynb) with renames only; the changes are listed in docs/hopsworks.md.

Run it with ``python -m examples.hopsworks_iris.feature_pipeline [--backfill]``.
"""

from __future__ import annotations

import random
import sys

import pandas as pd

import fti

BACKFILL = False


def generate_flower(
    name,
    sepal_len_max,
    sepal_len_min,
    sepal_width_max,
    sepal_width_min,
    petal_len_max,
    petal_len_min,
    petal_width_max,
    petal_width_min,
):
    """
    Returns a single iris flower as a single row in a DataFrame
    """
    df = pd.DataFrame(
        {
            "sepal_length": [random.uniform(sepal_len_max, sepal_len_min)],
            "sepal_width": [random.uniform(sepal_width_max, sepal_width_min)],
            "petal_length": [random.uniform(petal_len_max, petal_len_min)],
            "petal_width": [random.uniform(petal_width_max, petal_width_min)],
        }
    )
    df["variety"] = name
    return df


def get_random_iris_flower():
    """
    Returns a DataFrame containing one random iris flower
    """
    virginica_df = generate_flower("Virginica", 8, 5.5, 3.8, 2.2, 7, 4.5, 2.5, 1.4)
    versicolor_df = generate_flower("Versicolor", 7.5, 4.5, 3.5, 2.1, 3.1, 5.5, 1.8, 1.0)
    setosa_df = generate_flower("Setosa", 6, 4.5, 4.5, 2.3, 1.2, 2, 0.7, 0.3)

    # randomly pick one of these 3 and write it to the featurestore
    pick_random = random.uniform(0, 3)
    if pick_random >= 2:
        iris_df = virginica_df
    elif pick_random >= 1:
        iris_df = versicolor_df
    else:
        iris_df = setosa_df

    return iris_df


def iris_csv() -> pd.DataFrame:
    """The tutorial's iris.csv (the 150 flowers, ``variety`` capitalised), from scikit-learn's
    bundled copy: the port downloads nothing."""
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(
        columns={
            "sepal length (cm)": "sepal_length",
            "sepal width (cm)": "sepal_width",
            "petal length (cm)": "petal_length",
            "petal width (cm)": "petal_width",
        }
    )
    frame["variety"] = [str(data.target_names[t]).capitalize() for t in frame.pop("target")]
    return frame


def main(project: fti.Project | None = None, backfill: bool = BACKFILL) -> None:
    if backfill == True:  # noqa: E712, SIM108 - as in the tutorial
        iris_df = iris_csv()
    else:
        iris_df = get_random_iris_flower()

    project = project or fti.connect()
    fs = project.get_feature_store()

    iris_fg = fs.get_or_create_feature_group(
        name="iris",
        version=1,
        primary_key=["sepal_length", "sepal_width", "petal_length", "petal_width"],
        description="Iris flower dataset",
    )
    iris_fg.insert(iris_df)


if __name__ == "__main__":
    main(backfill="--backfill" in sys.argv)
