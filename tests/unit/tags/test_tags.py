"""Tags on feature groups, feature views, model versions and runs: stored per object, searchable,
removed with their object; ``fti tags`` on the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

import fti
from fti import tags
from fti.cli.main import cli
from fti.errors import NotFoundError, ValidationError
from fti.features.feature_group import FeatureGroup
from fti.registry.model_version import ModelVersion


def _group(project: fti.Project, name: str = "transactions", version: int = 1) -> FeatureGroup:
    fg = project.feature_store.get_or_create_feature_group(name, version, primary_key=["id"])
    if fg.features is None:
        fg.insert(pd.DataFrame({"id": [1, 2], "amount": [1.0, 2.0], "y": [0, 1]}))
    return fg


def _model(project: fti.Project, name: str = "clf") -> ModelVersion:
    X = pd.DataFrame({"amount": [0.0, 1.0, 2.0, 3.0]})
    return project.model_registry.register(name, LogisticRegression().fit(X, [0, 0, 1, 1]), input_example=X)


def test_every_kind_of_object_carries_its_own_tags(project: fti.Project) -> None:
    fg = _group(project)
    other_version = _group(project, version=2)
    fv = project.feature_store.get_or_create_feature_view(
        "fv", query=fg.select(["amount", "y"]), labels=["y"]
    )
    mv = _model(project)
    with project.run("train") as run:
        pass
    fg.add_tag("pii")
    fg.add_tag("gdpr")
    fg.add_tag("pii")  # idempotent
    fv.add_tag("pii")
    mv.add_tag("champion")
    run.add_tag("baseline")
    assert fg.tags == ["gdpr", "pii"]
    assert other_version.tags == []  # tags belong to one version
    assert project.feature_store.get_feature_group("transactions", 1).tags == ["gdpr", "pii"]
    assert fv.tags == ["pii"] and mv.tags == ["champion"] and run.tags == ["baseline"]
    assert project.model_registry.get_model("clf", version=1).tags == ["champion"]
    fg.remove_tag("gdpr")
    assert fg.tags == ["pii"]
    with pytest.raises(
        NotFoundError, match=r"feature group 'transactions' has no tag 'gdpr' \(its tags: \['pii'\]\)"
    ):
        fg.remove_tag("gdpr")
    assert tags.find(project, "feature_group", "pii", exact=True) == [fg.id]
    assert tags.find(project, "feature_group", "P") == [fg.id]  # substring, case-insensitive
    assert tags.find(project, "model_version", "pii") == []
    assert tags.counts(project) == [
        ("baseline", "run", 1),
        ("champion", "model_version", 1),
        ("pii", "feature_group", 1),
        ("pii", "feature_view", 1),
    ]


def test_deleting_an_object_removes_its_tags_and_a_reused_id_starts_clean(
    sqlite_project: fti.Project,
) -> None:
    fg = _group(sqlite_project, "temp")
    fg.add_tag("scratch")
    old_id = fg.id
    fg.delete()
    assert tags.find(sqlite_project, "feature_group", "scratch") == []
    again = _group(sqlite_project, "temp")
    assert again.id == old_id  # SQLite reuses the highest rowid: the tag must not come back
    assert again.tags == []
    mv = _model(sqlite_project, "m")
    mv.add_tag("old")
    mv.delete()
    assert tags.counts(sqlite_project) == []
    assert _model(sqlite_project, "m").tags == []


@pytest.mark.parametrize("bad", ["", "PII", "with space", "-leading", "x" * 64, "a/b", "<script>", 3, None])
def test_bad_tags_are_refused_with_the_rule(sqlite_project: fti.Project, bad: object) -> None:
    fg = _group(sqlite_project)
    with pytest.raises(ValidationError, match="use 1-63 lowercase letters, digits"):
        fg.add_tag(bad)  # type: ignore[arg-type]
    assert fg.tags == []


@pytest.fixture(scope="module")
def shared_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fti.Project]:
    with fti.connect(home=tmp_path_factory.mktemp("tags") / "home") as project:
        yield project


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=70))
def test_a_tag_is_stored_exactly_or_refused(shared_project: fti.Project, text: str) -> None:
    fg = _group(shared_project)
    try:
        fg.add_tag(text)
    except ValidationError:
        assert text not in fg.tags
        return
    assert text in fg.tags
    fg.remove_tag(text)
    assert text not in fg.tags


def test_fti_tags_add_rm_list(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with fti.connect(home=home) as project:
        _group(project)
        _model(project)
        with project.run("train"):
            pass

    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, ["--home", str(home), *args])
        return result.exit_code, result.stdout, result.stderr

    assert run("tags", "add", "fg", "transactions:1", "pii", "gdpr")[0] == 0
    assert run("tags", "add", "model", "clf@missing", "x")[0] == 2  # unknown alias: a clean error
    code, out, _ = run("tags", "add", "model", "clf", "champion", "--json")
    assert code == 0 and json.loads(out)["tags"] == ["champion"]
    assert run("tags", "add", "run", "1", "baseline")[0] == 0
    code, out, _ = run("tags", "list", "fg", "transactions", "--json")
    assert json.loads(out)["tags"] == ["gdpr", "pii"]
    code, out, _ = run("tags", "rm", "fg", "transactions", "gdpr", "--json")
    assert json.loads(out)["tags"] == ["pii"]
    code, out, _ = run("tags", "list", "--json")
    assert {(r["tag"], r["kind"]) for r in json.loads(out)} == {
        ("pii", "feature_group"),
        ("champion", "model_version"),
        ("baseline", "run"),
    }
    code, _, err = run("tags", "add", "fg", "transactions", "Not Valid")
    assert code == 2 and "invalid tag 'Not Valid'" in err
    code, _, err = run("tags", "add", "fg", "transactions:x", "a")
    assert code == 2 and "use NAME or NAME:VERSION" in err
    code, _, err = run("tags", "list", "fg")
    assert code == 2 and "give the object" in err
