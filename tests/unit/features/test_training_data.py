"""Training datasets: reproducible after new inserts, transformations fitted on the training split
only (no leakage)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.unit.features._data import at, bits, make_view


def test_reproducible_after_new_inserts(project, groups) -> None:
    fv = make_view(project, groups)
    x_train, *_ = fv.train_test_split(test_size=0.3, seed=0)
    before = fv.get_training_data(1)
    record = fv.training_dataset(1)
    groups["tx"].insert(
        pd.DataFrame(
            {
                "tid": [100],
                "ts": [at(100)],
                "cc_num": [1],
                "amount": [1e6],
                "category": ["new"],
                "is_fraud": [1],
            }
        )
    )
    groups["profiles"].insert(
        pd.DataFrame({"cc_num": [1], "ts": [at(6)], "age": [1.0], "city": ["x"], "score": [9.0]})
    )
    after = fv.get_training_data(1)
    for a, b in zip(before, after, strict=True):
        pd.testing.assert_frame_equal(a, b) if isinstance(
            a, pd.DataFrame
        ) else pd.testing.assert_series_equal(a, b)
    pd.testing.assert_frame_equal(after[0], x_train)
    assert fv.training_dataset(1).input_versions == record.input_versions
    assert record.input_versions == {g.table_name: 0 for g in groups.values()}
    assert record.table_name.startswith("default__fv_fraud__v1__td1_")
    assert project.backends.offline.version(record.table_name) == record.table_version == 0
    # a new version sees the new rows
    _, df = fv.create_training_data()
    assert len(df) == 41


def test_no_leakage_statistics_come_from_the_training_split_only(project, groups) -> None:
    fv = make_view(project, groups)
    fv.train_test_split(test_size=0.25, seed=11)
    raw_train, _ = fv.get_training_data(1, split="train", transformed=False)
    raw_all = pd.concat(fv.get_training_data(1, transformed=False)[:2])
    stats = fv.training_dataset(1).transformation_stats
    amount = raw_train["amount"].to_numpy()
    assert stats["amount"] == {"mean": float(np.mean(amount)), "std": float(np.std(amount))}
    assert stats["amount"]["mean"] != float(np.mean(raw_all["amount"]))
    age = raw_train["p_age"].dropna().to_numpy()
    assert stats["p_age"] == {"min": float(age.min()), "max": float(age.max())}
    score = raw_train["p_score"].dropna().to_numpy()
    q25, median, q75 = np.percentile(score, [25, 50, 75])
    assert stats["p_score"] == {"median": median, "q25": q25, "q75": q75}
    assert stats["category"] == {"categories": sorted(raw_train["category"].unique())}
    x_train, _ = fv.get_training_data(1, split="train")
    expected = (amount - stats["amount"]["mean"]) / stats["amount"]["std"]
    assert [bits(v) for v in x_train["amount"]] == [bits(v) for v in expected]
