"""Deployments and API keys in the catalog (SQLite and PostgreSQL), in-process predict, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select

import fti
from fti.errors import AlreadyExistsError, NotFoundError, ValidationError
from fti.serving.auth import KeyChecker, create_key, list_keys, revoke_key
from fti.storage.metadata.tables import api_keys


@pytest.fixture
def registered(project: fti.Project) -> dict[str, Any]:
    X, y = make_classification(200, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    model = LogisticRegression().fit(X, y)
    example = pd.DataFrame(X[:5], columns=["a", "b", "c"])
    mv = project.model_registry.register("churn", model, input_example=example)
    project.model_registry.set_alias("churn", mv.version, "production")
    return {"model": model, "X": X}


def test_deploy_list_get_stop_start_delete(project: fti.Project, registered: dict[str, Any]) -> None:
    serving = project.serving
    dep = serving.deploy("churn", model="churn@production", max_batch_size=8, max_batch_delay_ms=1)
    assert (dep.name, dep.model, dep.status) == ("churn", "churn@production", "running")
    assert dep.spec.max_batch_size == 8
    assert [d.name for d in serving.list()] == ["churn"]
    again = serving.deploy("churn", model="churn", version=1, timeout_ms=500)  # redeploy updates it
    assert (again.spec.model_version, again.spec.timeout_ms, again.spec.max_batch_size) == (1, 500, 32)
    assert serving.get("churn").to_dict()["config"]["timeout_ms"] == 500
    again.stop()
    assert serving.get("churn").status == "stopped"
    again.start()
    assert serving.get("churn").status == "running"
    again.delete()
    assert serving.list() == []
    with pytest.raises(NotFoundError, match="deployment 'churn' not found"):
        serving.get("churn")


def test_one_reference_syntax_pins_a_version(project: fti.Project, registered: dict[str, Any]) -> None:
    """``model="churn:1"`` is the same deployment as ``model="churn", version=1``: it stays on
    version 1 when the alias or the latest version moves."""
    from fti.types import ModelRef

    mr = project.model_registry
    X, model = registered["X"], registered["model"]
    example = pd.DataFrame(X[:5], columns=["a", "b", "c"])
    mr.register("churn", LogisticRegression().fit(X, (X[:, 1] > 0).astype(int)), input_example=example)
    mr.set_alias("churn", 2, "production")
    pinned = project.serving.deploy("pinned", model="churn:1")
    keyword = project.serving.deploy("keyword", model="churn", version=1)
    following = project.serving.deploy("following", model=ModelRef("churn", alias="production"))
    assert (
        (pinned.model, pinned.spec.model_version)
        == (keyword.model, keyword.spec.model_version)
        == ("churn", 1)
    )
    assert pinned.ref == keyword.ref == ModelRef("churn", version=1)
    assert (following.model, following.spec.model_version, str(following.ref)) == (
        "churn@production",
        None,
        "churn@production",
    )
    rows = X[:20]
    assert (mr.get_model("churn:2").load().predict(rows) != model.predict(rows)).any()  # they differ
    served = project.serving.get("pinned").predict(
        {"a": rows[:, 0].tolist(), "b": rows[:, 1].tolist(), "c": rows[:, 2].tolist()}
    )
    assert served["predict"] == model.predict(rows).tolist()
    from fti.serving.repository import resolve

    assert resolve(project, project.serving.get("pinned").spec).version == 1
    assert resolve(project, project.serving.get("following").spec).version == 2
    for name in ("pinned", "keyword", "following"):
        project.serving.get(name).delete()


def test_in_process_predict_matches_the_model(project: fti.Project, registered: dict[str, Any]) -> None:
    dep = project.serving.deploy("churn", model="churn@production")
    X = registered["X"]
    one = dep.predict({"a": X[0, 0], "b": X[0, 1], "c": X[0, 2]})
    assert one["predict"] == registered["model"].predict(X[:1]).tolist()
    rows = [{"a": r[0], "b": r[1], "c": r[2]} for r in X[:4]]
    many = dep.predict(rows)
    assert many["predict"] == registered["model"].predict(X[:4]).tolist()
    np.testing.assert_allclose(many["predict_proba"], registered["model"].predict_proba(X[:4]), atol=1e-5)
    frame = dep.predict(pd.DataFrame(X[:3], columns=["a", "b", "c"]))
    assert frame["predict"] == registered["model"].predict(X[:3]).tolist()
    with pytest.raises(ValidationError, match=r"unknown input\(s\) \['zz'\]"):
        dep.predict({"a": 1.0, "b": 2.0, "c": 3.0, "zz": 1.0})
    with pytest.raises(ValidationError, match="input 'a' contains null/NaN"):
        dep.predict({"a": None, "b": 2.0, "c": 3.0})
    with pytest.raises(ValidationError, match="predict takes a dict"):
        dep.predict("a=1")


BAD_DEPLOYMENTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"name": "Bad Name", "model": "churn"}, ValidationError, "invalid deployment name"),
    ({"name": "d", "model": "churn@"}, ValidationError, "empty alias"),
    ({"name": "d", "model": ""}, ValidationError, "model must be"),
    ({"name": "d", "model": "ghost"}, NotFoundError, "model 'ghost' not found"),
    ({"name": "d", "model": "churn@staging"}, NotFoundError, "no alias 'staging'"),
    ({"name": "d", "model": "churn@production", "version": 1}, ValidationError, "not both"),
    ({"name": "d", "model": "churn:1", "version": 1}, ValidationError, "not both"),
    ({"name": "d", "model": "churn:0"}, ValidationError, "must be an integer from 1"),
    ({"name": "d", "model": "churn@production:1"}, ValidationError, "names both an alias and a version"),
    ({"name": "d", "model": "churn:9"}, NotFoundError, "no version 9"),
    ({"name": "d", "model": "churn", "version": 9}, NotFoundError, "no version 9"),
    (
        {"name": "d", "model": "churn", "max_batch_size": 0},
        ValidationError,
        "max_batch_size must be a positive",
    ),
    ({"name": "d", "model": "churn", "max_batch_delay_ms": -1}, ValidationError, "non-negative"),
    ({"name": "d", "model": "churn", "scorer": "gpu"}, ValidationError, "scorer must be one of"),
    (
        {"name": "d", "model": "churn", "enrich": True},
        ValidationError,
        "enrich=True needs a model with a feature view",
    ),
    ({"name": "d", "model": "churn", "enrich": "yes"}, ValidationError, "enrich must be True or False"),
    ({"name": "d" * 60, "model": "churn"}, ValidationError, "at most 49 characters"),
]


def test_bad_deployments_are_rejected_and_nothing_is_written(
    project: fti.Project, registered: dict[str, Any]
) -> None:
    for kwargs, error, message in BAD_DEPLOYMENTS:
        with pytest.raises(error) as info:
            project.serving.deploy(**kwargs)
        assert message in str(info.value), kwargs
    assert project.serving.list() == []


def test_api_keys_are_stored_hashed_listed_and_revoked(project: fti.Project) -> None:
    key = create_key(project, "ci")
    assert key.startswith("fti_") and len(key) > 40
    with project.backends.catalog.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(select(api_keys)).mappings()]
    assert len(stored) == 1 and key not in str(stored)
    [info] = list_keys(project)
    assert (info.name, info.active, key.startswith(info.prefix)) == ("ci", True, True)
    checker = KeyChecker(project)
    checker.check(f"Bearer {key}")
    with pytest.raises(AlreadyExistsError, match="already exists"):
        create_key(project, "ci")
    revoke_key(project, "ci")
    assert not list_keys(project)[0].active
    checker.refresh()
    with pytest.raises(fti.errors.AuthenticationError, match="invalid or revoked"):
        checker.check(f"Bearer {key}")
    with pytest.raises(NotFoundError, match="no active API key named 'ci'"):
        revoke_key(project, "ci")
    with pytest.raises(ValidationError, match="invalid api key name"):
        create_key(project, "Not Valid")


def test_fastest_scorer_falls_back_to_native_for_a_string_input(sqlite_project: fti.Project) -> None:
    """Issue 19 item 21: the default ``scorer="fastest"`` for a model with a BYTES input (a
    pipeline one-hot encoding a string column) deploys and predicts with the native model."""
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"city": ["a", "b", "c", "a"] * 25, "amount": np.arange(100.0)})
    target = (frame["city"] == "b").astype(int)
    encoder = make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough")
    model = make_pipeline(encoder, LogisticRegression()).fit(frame, target)
    mv = sqlite_project.model_registry.register("cities", model, input_example=frame.head(5))
    assert [s.datatype for s in mv.signature.inputs] == ["BYTES", "FP64"]

    dep = sqlite_project.serving.deploy("cities", model="cities", log_requests=False)
    assert dep.spec.scorer == "fastest"
    rows = frame.iloc[[0, 1, 2]]
    got = dep.predict(rows)
    assert got["predict"] == model.predict(rows).tolist()
    from fti.serving.repository import load_model

    assert load_model(sqlite_project, dep.spec).scorer_kind == "native"


def test_a_split_is_stored_and_bad_splits_leave_the_deployment_as_it_was(
    project: fti.Project, registered: dict[str, Any]
) -> None:
    from fti.errors import SchemaError

    mr, X = project.model_registry, registered["X"]
    mr.register("churn", LogisticRegression(C=0.1).fit(X, (X[:, 0] > 0).astype(int)),
                input_example=pd.DataFrame(X[:5], columns=["a", "b", "c"]))  # fmt: skip
    other = pd.DataFrame(X[:5, :2], columns=["a", "z"])
    mr.register("other", LogisticRegression().fit(X[:, :2], (X[:, 0] > 0).astype(int)), input_example=other)
    dep = project.serving.deploy("churn", model="churn@production", variants={"challenger": ("churn:2", 10)},
                                 sticky="a")  # fmt: skip
    assert dep.spec.variants == (("challenger", "churn:2", 10.0),) and dep.spec.sticky == "a"
    assert project.serving.get("churn").spec == dep.spec  # read back from the catalog as stored
    assert dep.to_dict()["config"]["variants"] == {"challenger": {"model": "churn:2", "percent": 10.0}}
    bad: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"variants": {"a": ("churn:2", 70), "b": ("churn:1", 40)}}, ValidationError, "sum to 110 %"),
        ({"variants": {"challenger": ("churn:9", 10)}}, NotFoundError, "has no version 9"),
        ({"variants": {"challenger": ("nope:1", 10)}}, NotFoundError, "model 'nope' not found"),
        ({"variants": {"challenger": ("other:1", 10)}}, SchemaError, r"takes the inputs \['a', 'z'\]"),
        ({"variants": {"challenger": ("churn:2", 10)}, "sticky": "cc_num"}, ValidationError,
         "sticky key 'cc_num' is not an input"),
        ({"sticky": 3}, ValidationError, "sticky must name an input"),
        ({"sticky": "a"}, ValidationError, "routes between variants"),
        ({"shadow": "nope@candidate"}, NotFoundError, "model 'nope' not found"),
        ({"shadow": "other:1"}, SchemaError, r"variant 'shadow' takes the inputs \['a', 'z'\]"),
        ({"shadow": "churn@"}, ValidationError, "alias"),
    ]  # fmt: skip
    for kwargs, error, message in bad:
        with pytest.raises(error, match=message):
            project.serving.deploy("churn", model="churn@production", **kwargs)
        assert project.serving.get("churn").spec == dep.spec
