"""Batch scoring end to end: a real feature group and feature view, a registered model, a real
catalog (SQLite and PostgreSQL), predictions written to a feature group and read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti
from fti.errors import AlreadyExistsError, IntegrityError, NotFoundError, SchemaError, ValidationError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
N = 240


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def setup_model(project: fti.Project, model: Any = None, name: str = "fraud") -> tuple[Any, Any]:
    """A transactions group, a feature view with transformations, a model registered from it."""
    fs = project.feature_store
    tx = fs.get_or_create_feature_group("transactions", primary_key=["tid"], event_time="ts")
    rng = np.random.default_rng(3)
    amount = rng.normal(50, 20, N)
    category = [["food", "travel", "misc"][i % 3] for i in range(N)]
    tx.insert(
        pd.DataFrame(
            {
                "tid": np.arange(N),
                "ts": [at(i // 2) for i in range(N)],  # two rows share each event time
                "amount": amount,
                "category": category,
                "hour": (np.arange(N) % 24).astype(np.int64),
                "is_fraud": ((amount > 60) | (np.arange(N) % 7 == 0)).astype(np.int64),
            }
        )
    )
    fv = fs.get_or_create_feature_view(
        "fraud_view",
        query=tx.select(["amount", "category", "hour", "is_fraud"]),
        labels=["is_fraud"],
        transformations={"amount": "standard_scaler", "category": "one_hot_encoder"},
    )
    x_train, _, y_train, _ = fv.train_test_split(test_size=0.25, seed=1)
    names = fv.feature_names()
    if model is None:
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(10, max_depth=4, random_state=0)
    model.fit(x_train[names], y_train)
    mr = project.model_registry
    version = mr.register(
        name,
        model,
        feature_view=fv,
        training_dataset_version=fv.last_training_dataset_version,
        input_example=x_train[names].head(3),
    )
    mr.set_alias(name, version.version, "production")
    return fv, model


def test_score_writes_one_prediction_per_input_row(project: fti.Project) -> None:
    fv, model = setup_model(project)
    start, end = at(10), at(100)
    result = fti.batch.score(
        project, model="fraud@production", start_time=start, end_time=end, output="fraud_predictions"
    )

    expected_input = fv.get_batch_data(start, end, with_keys=True)
    assert result.rows == len(expected_input) == 180
    assert (result.model_name, result.model_version) == ("fraud", 1)
    assert result.scorer in {"native", "onnx"} and len(result.commit_versions) == 1
    group = result.feature_group
    assert group is not None and (group.name, group.primary_key, group.event_time) == (
        "fraud_predictions",
        ["tid"],
        "ts",
    )
    preds = group.read().sort_values("tid").reset_index(drop=True)
    assert preds.columns.tolist() == [
        "tid", "ts", "prediction", "proba_0", "proba_1", "model_name", "model_version", "scored_at"
    ]  # fmt: skip
    expected_input = expected_input.sort_values("tid").reset_index(drop=True)
    assert preds["tid"].tolist() == expected_input["tid"].tolist()
    assert preds["ts"].tolist() == expected_input["ts"].tolist()
    features = expected_input[fv.feature_names()]
    np.testing.assert_array_equal(preds["prediction"].to_numpy(), model.predict(features))
    np.testing.assert_allclose(
        preds[["proba_0", "proba_1"]].to_numpy(), model.predict_proba(features), atol=1e-6
    )
    assert set(preds["model_name"]) == {"fraud"} and set(preds["model_version"]) == {1}
    assert preds["scored_at"].nunique() == 1 and preds["scored_at"].iloc[0] == result.scored_at


def test_tiny_chunks_give_identical_predictions(sqlite_project: fti.Project) -> None:
    setup_model(sqlite_project)
    progress: list[tuple[int, int]] = []
    whole = fti.batch.score(sqlite_project, "fraud", output="whole")
    chunked = fti.batch.score(
        sqlite_project,
        "fraud:1",
        output="chunked",
        chunk_rows=7,
        progress=lambda d, t: progress.append((d, t)),
    )
    assert whole.rows == chunked.rows == N
    assert chunked.commit_versions == [0]  # many chunks, still one commit
    assert len(progress) > N // 8 and progress[-1] == (N, N)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)

    def read(result: Any) -> pd.DataFrame:
        return (
            result.feature_group.read().drop(columns=["scored_at"]).sort_values("tid").reset_index(drop=True)
        )

    # the same rows, labels and metadata; probabilities equal to float32 precision (each run picks
    # its fastest verified scorer, which may be ONNX in one and native in the other)
    left, right = read(whole), read(chunked)
    proba = ["proba_0", "proba_1"]
    pd.testing.assert_frame_equal(left.drop(columns=proba), right.drop(columns=proba))
    np.testing.assert_allclose(left[proba].to_numpy(), right[proba].to_numpy(), rtol=0, atol=1e-6)


def test_rescoring_upserts_and_empty_window_writes_nothing(sqlite_project: fti.Project) -> None:
    setup_model(sqlite_project)
    first = fti.batch.score(sqlite_project, "fraud", start_time=at(0), end_time=at(30), output="preds")
    again = fti.batch.score(sqlite_project, "fraud", start_time=at(20), end_time=at(50), output="preds")
    assert (first.rows, again.rows) == (60, 60)
    assert len(again.feature_group.read()) == 100  # the 20 overlapping rows were replaced, not duplicated
    later = fti.batch.score(sqlite_project, "fraud", start_time=at(50), end_time=at(60), output="preds")
    assert later.rows == 20 and len(later.feature_group.read()) == 120
    # a new group and a range with no stored predictions append; an overlapping range merges
    table = later.feature_group.table_name
    operations = [c.operation for c in sqlite_project.backends.offline.history(table)]
    assert [op.upper() for op in operations[-3:]] == ["WRITE", "MERGE", "WRITE"], operations
    empty = fti.batch.score(sqlite_project, "fraud", start_time=at(500), output="nothing")
    assert empty.rows == 0 and empty.feature_group is None
    assert "nothing" not in [g.name for g in sqlite_project.feature_store.list_feature_groups()]


def test_lightgbm_model_through_the_fastest_scorer(sqlite_project: fti.Project) -> None:
    import lightgbm as lgb

    fv, model = setup_model(sqlite_project, lgb.LGBMClassifier(n_estimators=10, num_leaves=6, verbose=-1))
    result = fti.batch.score(sqlite_project, "fraud@production", output="lgb_preds", chunk_rows=50)
    preds = result.feature_group.read().sort_values("tid")
    data = fv.get_batch_data(with_keys=True).sort_values("tid")
    expected = model.predict_proba(data[fv.feature_names()])
    np.testing.assert_allclose(preds[["proba_0", "proba_1"]].to_numpy(), expected, atol=1e-6)
    assert result.rows == N


def test_bad_inputs_are_rejected_and_write_nothing(project: fti.Project) -> None:
    setup_model(project)
    mr = project.model_registry
    from sklearn.linear_model import LogisticRegression

    mr.register("loose", LogisticRegression().fit(np.eye(2), [0, 1]))
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"model": "nope@production"}, NotFoundError, "model 'nope' not found"),
        ({"model": "fraud@staging"}, NotFoundError, "has no alias 'staging'"),
        ({"model": "fraud:9"}, NotFoundError, "has no version 9"),
        ({"model": "fraud:x"}, ValidationError, "must be an integer"),
        ({"model": "fraud@production:1"}, ValidationError, "names both an alias and a version"),
        ({"model": ""}, ValidationError, "model must be"),
        ({"start_time": at(5), "end_time": at(1)}, ValidationError, "must be before end_time"),
        ({"start_time": datetime(2024, 1, 1)}, ValidationError, "start_time must be a tz-aware datetime"),
        ({"output": "Bad-Name"}, ValidationError, "invalid output feature group name"),
        ({"chunk_rows": 0}, ValidationError, "chunk_rows must be a positive integer"),
        ({"prefer": "gpu"}, ValidationError, "prefer must be one of"),
        ({"model": "loose"}, ValidationError, "registered without a feature view"),
    ]
    for overrides, error, message in cases:
        kwargs: dict[str, Any] = {"model": "fraud@production", "output": "preds", **overrides}
        with pytest.raises(error, match=message):
            fti.batch.score(project, **kwargs)
    assert "preds" not in [g.name for g in project.feature_store.list_feature_groups()]
    # an existing output group that cannot take the predictions is refused before any scoring
    fs = project.feature_store
    fs.get_or_create_feature_group("by_card", primary_key=["cc_num"])
    with pytest.raises(AlreadyExistsError, match=r"has primary key \['cc_num'\]"):
        fti.batch.score(project, "fraud", output="by_card")
    other = fs.get_or_create_feature_group("other_preds", primary_key=["tid"], event_time="ts")
    other.insert(pd.DataFrame({"tid": [1], "ts": [T0], "score": [0.5]}))
    with pytest.raises(SchemaError, match="holds columns"):
        fti.batch.score(project, "fraud", output="other_preds")
    assert len(other.read()) == 1


def test_spine_without_event_time_is_scored_whole(sqlite_project: fti.Project) -> None:
    from sklearn.tree import DecisionTreeClassifier

    fs = sqlite_project.feature_store
    cards = fs.get_or_create_feature_group("cards", primary_key=["cc_num"])
    cards.insert(
        pd.DataFrame({"cc_num": np.arange(30), "limit": np.arange(30) * 10.0, "risky": np.arange(30) % 2})
    )
    fv = fs.get_or_create_feature_view("cards_view", query=cards.select(["limit", "risky"]), labels=["risky"])
    x, y = fv.get_training_data(fv.create_training_data()[0])
    model = DecisionTreeClassifier(random_state=0).fit(x[fv.feature_names()], y)
    sqlite_project.model_registry.register(
        "cards_model", model, feature_view=fv, training_dataset_version=fv.last_training_dataset_version
    )
    result = fti.batch.score(sqlite_project, "cards_model", output="card_preds", chunk_rows=8)
    group = result.feature_group
    assert result.rows == 30 and group is not None and group.event_time is None
    preds = group.read().sort_values("cc_num")
    assert preds["prediction"].tolist() == (np.arange(30) % 2).tolist()
    with pytest.raises(ValidationError, match="spine 'cards' of feature view 'cards_view' has none"):
        fti.batch.score(sqlite_project, "cards_model", output="card_preds", start_time=T0)


def test_a_failure_midway_commits_nothing(project: fti.Project) -> None:
    setup_model(project)
    calls: list[int] = []

    def fail_on_the_third_chunk(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise RuntimeError("interrupted")

    def run(output: str) -> None:
        with pytest.raises(RuntimeError, match="interrupted"):
            fti.batch.score(project, "fraud", output=output, chunk_rows=20, progress=fail_on_the_third_chunk)

    run("fresh_preds")  # a group this run created is removed again
    assert "fresh_preds" not in [g.name for g in project.feature_store.list_feature_groups()]
    kept = fti.batch.score(project, "fraud", end_time=at(10), output="kept_preds")
    calls.clear()
    run("kept_preds")  # an existing group keeps exactly what it had
    group = project.feature_store.get_feature_group("kept_preds")
    assert [c.version for c in group.commits()] == kept.commit_versions
    assert len(group.read()) == kept.rows == 20


def test_a_cached_converted_winner_scores_without_loading_the_model(
    sqlite_project: fti.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from sklearn.ensemble import HistGradientBoostingClassifier

    from fti.inference import manifest as scorer_manifest
    from fti.inference.cache import ScorerCache
    from fti.registry.model_version import ModelVersion

    setup_model(sqlite_project, HistGradientBoostingClassifier(max_iter=10, random_state=0))
    mv = sqlite_project.model_registry.get_model("fraud@production")
    entry = ScorerCache.at_home(sqlite_project.settings.home).entry(mv)
    entry.remember_choice("_build_onnx_hgb")  # ONNX won an earlier timing
    first = fti.batch.score(sqlite_project, "fraud", output="first")  # native load, records it
    assert first.scorer == "onnx"
    manifest = json.loads(entry.path(scorer_manifest.SUFFIX).read_text())
    assert manifest["classes"] == [0, 1]

    def refuse(self: ModelVersion) -> None:
        raise AssertionError("the native model was loaded")

    monkeypatch.setattr(ModelVersion, "load", refuse)
    second = fti.batch.score(sqlite_project, "fraud", output="second")
    assert second.scorer == "onnx" and second.rows == first.rows == N

    def read(result: Any) -> pd.DataFrame:
        frame = result.feature_group.read().drop(columns=["scored_at"])
        return frame.sort_values("tid").reset_index(drop=True)

    pd.testing.assert_frame_equal(read(first), read(second))
    with pytest.raises(ValidationError, match="prefer must be one of"):  # checked before the cache
        fti.batch.score(sqlite_project, "fraud", output="never", prefer="gpu")
    # without recorded classes (an older manifest) the model is loaded, as before
    del manifest["classes"]
    entry.path(scorer_manifest.SUFFIX).write_text(json.dumps(manifest))
    with pytest.raises(AssertionError, match="the native model was loaded"):
        fti.batch.score(sqlite_project, "fraud", output="third")
    # a stored artifact changed after registration: refused even though a conversion is cached
    manifest["classes"] = [0, 1]
    entry.path(scorer_manifest.SUFFIX).write_text(json.dumps(manifest))
    artifacts = Path(sqlite_project.settings.resolved_artifacts_url) / mv.artifact_prefix
    for path in artifacts.rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match="does not match its recorded digest"):
        fti.batch.score(sqlite_project, "fraud", output="fourth")
    with pytest.raises(NotFoundError):
        sqlite_project.feature_store.get_feature_group("fourth")


KILLED_RUN = """
import os, signal, sys
import fti

project = fti.connect(home=sys.argv[1], catalog_url=sys.argv[2])
calls = []

def killed_midway(done, total):
    calls.append(done)
    if len(calls) == 3:  # the output group exists, its commit does not yet
        os.kill(os.getpid(), signal.SIGKILL)

fti.batch.score(project, "fraud", output="killed_preds", chunk_rows=20, progress=killed_midway)
"""


def test_a_group_left_by_a_killed_run_is_removed_by_the_next_run(home: Path, catalog_url: str) -> None:
    import signal
    import subprocess
    import sys

    with fti.connect(home=home, catalog_url=catalog_url) as project:
        setup_model(project)
    root = str(Path(__file__).resolve().parents[3])
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(home), catalog_url], cwd=root, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    with fti.connect(home=home, catalog_url=catalog_url) as project:
        fs = project.feature_store
        left = fs.get_feature_group("killed_preds")  # the killed run's empty group
        assert left.commits() == [] and left.features is None
        # the next run scores an empty window: nothing to write, and the leftover is gone
        empty = fti.batch.score(project, "fraud", start_time=at(500), end_time=at(501), output="killed_preds")
        assert empty.rows == 0
        assert "killed_preds" not in [g.name for g in fs.list_feature_groups()]
        result = fti.batch.score(project, "fraud", end_time=at(10), output="killed_preds")
        assert result.rows == 20 and len(fs.get_feature_group("killed_preds").read()) == 20


def test_a_joined_view_scored_in_chunks_equals_the_whole_join_scored_at_once(
    sqlite_project: fti.Project,
) -> None:
    """The joined rows stream spine batch by batch (fti.features.lookup_join); scoring them in
    many chunks gives exactly what the whole point-in-time join scored in one call gives: three
    spine rows share each event time, some share it with a customer row (known at that time),
    some keys have no customer row and early rows none yet (NaN inputs, which the model takes)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    fs = sqlite_project.feature_store
    rng = np.random.default_rng(11)
    n = 300
    orders = fs.get_or_create_feature_group("orders", primary_key=["oid"], event_time="ts")
    orders.insert(
        pd.DataFrame(
            {
                "oid": np.arange(n),
                "ts": [at(i // 3) for i in range(n)],  # ties in event time
                "cust": rng.integers(0, 15, n),  # customers 12-14 have no rows
                "amount": rng.normal(50, 20, n),
                "label": rng.integers(0, 2, n),
            }
        )
    )
    customers = fs.get_or_create_feature_group("customers", primary_key=["cust"], event_time="ts")
    versions = [(c, h) for c in range(12) for h in (3 + c, 40 + c, 70)]  # none before hour 3
    customers.insert(
        pd.DataFrame(
            {
                "cust": [c for c, _ in versions],
                "ts": [at(h) for _, h in versions],  # equal to some spine rows' times
                "balance": rng.normal(1000, 300, len(versions)),
                "visits": rng.integers(0, 50, len(versions)),
            }
        )
    )
    fv = fs.get_or_create_feature_view(
        "orders_view",
        query=orders.select(["amount", "label"]).join(customers.select(["balance", "visits"]), on=["cust"]),
        labels=["label"],
        transformations={"amount": "standard_scaler", "balance": "robust_scaler"},
    )
    x_train, _, y_train, _ = fv.train_test_split(test_size=0.25, seed=2)
    names = fv.feature_names()
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x_train[names], y_train)
    sqlite_project.model_registry.register(
        "orders_model", model, feature_view=fv, training_dataset_version=fv.last_training_dataset_version
    )

    result = fti.batch.score(sqlite_project, "orders_model", output="chunked", chunk_rows=7, prefer="native")

    whole = fv.get_batch_data(with_keys=True, order=False).sort_values("oid").reset_index(drop=True)
    assert result.rows == len(whole) == n and result.scorer == "native"
    assert whole["balance"].isna().sum() > 20 and whole["balance"].notna().sum() > 100  # both kinds
    preds = result.feature_group.read().sort_values("oid").reset_index(drop=True)
    assert preds["oid"].tolist() == whole["oid"].tolist() and preds["ts"].tolist() == whole["ts"].tolist()
    expected = model.predict_proba(whole[names])
    np.testing.assert_array_equal(preds[["proba_0", "proba_1"]].to_numpy(), expected)  # bit for bit
    np.testing.assert_array_equal(preds["prediction"].to_numpy(), model.predict(whole[names]))
