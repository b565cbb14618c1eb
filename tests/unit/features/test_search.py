"""Listing and searching feature groups, features and feature views: matching, tags, pages."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fti
from fti.errors import ValidationError


def _groups(project: fti.Project) -> None:
    fs = project.feature_store
    tx = fs.get_or_create_feature_group(
        "transactions", primary_key=["tid"], description="Card transactions (PII: card number)"
    )
    tx.insert(pd.DataFrame({"tid": [1, 2], "cc_num": [10, 11], "amount": [1.5, 2.5], "is_fraud": [0, 1]}))
    tx.insert(pd.DataFrame({"tid": [3], "cc_num": [10], "amount": [3.5], "is_fraud": [0]}))
    fs.get_or_create_feature_group("transactions", version=2, primary_key=["tid"])
    profiles = fs.get_or_create_feature_group("profiles", primary_key=["cc_num"], description="100%_real")
    profiles.insert(pd.DataFrame({"cc_num": [10, 11], "age": [30, 40], "home_city": ["a", "b"]}))
    profiles.add_tag("pii")
    tx.add_tag("payments")
    fv = fs.get_or_create_feature_view(
        "fraud",
        query=tx.select(["cc_num", "amount", "is_fraud"]).join(profiles.select(["age"])),
        labels=["is_fraud"],
    )
    fv.add_tag("pii")
    fs.get_or_create_feature_view("ages", query=profiles.select(["age"]), description="Age only")


def test_feature_groups_match_name_description_or_tag(project: fti.Project) -> None:
    _groups(project)
    fs = project.feature_store
    everything = fs.search_feature_groups()
    assert [(g.name, g.version) for g in everything] == [
        ("profiles", 1),
        ("transactions", 1),
        ("transactions", 2),
    ]
    assert everything.total == 3 and not everything.has_next
    tx = everything.items[1]
    assert (tx.commits, tx.rows_inserted, tx.tags) == (2, 3, ["payments"])
    assert tx.last_commit_at is not None and tx.last_commit_at.tzinfo is not None
    assert [f.name for f in tx.features or []] == ["tid", "cc_num", "amount", "is_fraud"]
    assert (everything.items[2].commits, everything.items[2].last_commit_at) == (0, None)
    assert [g.name for g in fs.search_feature_groups("PII")] == [
        "profiles",
        "transactions",
    ]  # tag; description
    assert [g.name for g in fs.search_feature_groups("pii", tag="pii")] == ["profiles"]
    assert [g.name for g in fs.search_feature_groups(tag="payments")] == ["transactions"]
    assert [g.name for g in fs.search_feature_groups("%_")] == ["profiles"]  # LIKE wildcards are literal
    assert fs.search_feature_groups("nothing matches").total == 0
    page = fs.search_feature_groups(offset=1, limit=1)
    assert ([g.name for g in page], page.total, page.has_previous, page.has_next) == (
        ["transactions"],
        3,
        True,
        True,
    )
    assert fs.search_feature_groups(limit=0).items == [] and fs.search_feature_groups(limit=0).total == 3


def test_features_and_views(project: fti.Project) -> None:
    _groups(project)
    fs = project.feature_store
    found = fs.search_features("C")
    assert [(f.group, f.name, f.dtype) for f in found] == [
        ("profiles", "cc_num", "int64"),
        ("profiles", "home_city", "string"),
        ("transactions", "cc_num", "int64"),
    ]
    assert [f.name for f in fs.search_features("amount")] == ["amount"]
    views = fs.search_feature_views()
    assert [(v.name, v.groups, v.training_datasets) for v in views] == [
        ("ages", [("profiles", 1)], 0),
        ("fraud", [("transactions", 1), ("profiles", 1)], 0),
    ]
    fs.get_feature_view("fraud").create_training_data()
    assert fs.search_feature_views("fraud").items[0].training_datasets == 1
    assert [v.name for v in fs.search_feature_views("pii")] == ["fraud"]
    assert [v.name for v in fs.search_feature_views("age only")] == ["ages"]
    assert [v.name for v in fs.search_feature_views(feature_group=("profiles", 1))] == ["ages", "fraud"]
    assert [v.name for v in fs.search_feature_views(feature_group=("transactions", 1))] == ["fraud"]
    assert fs.search_feature_views(feature_group=("transactions", 2)).total == 0
    commits = fs.recent_commits(2)
    assert [(c.group, c.rows_inserted) for c in commits] == [("profiles", 2), ("transactions", 1)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offset": -1}, "offset must be an integer >= 0"),
        ({"limit": 5000}, "limit must be an integer from 0 to 1000"),
        ({"limit": True}, "limit must be an integer"),
        ({"query": 3}, "search text must be a string"),
        ({"query": "x" * 201}, "at most 200 characters"),
        ({"tag": "Bad Tag"}, "invalid tag"),
    ],
)
def test_bad_search_arguments(sqlite_project: fti.Project, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        sqlite_project.feature_store.search_feature_groups(**kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def many_groups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fti.Project]:
    with fti.connect(home=tmp_path_factory.mktemp("search") / "home") as project:
        for i in range(23):
            fg = project.feature_store.get_or_create_feature_group(
                f"g{i:02d}", primary_key=["id"], description="even" if i % 2 == 0 else "odd"
            )
            if i % 3 == 0:
                fg.add_tag("third")
        yield project


@settings(max_examples=40, deadline=None)
@given(limit=st.integers(1, 30), query=st.sampled_from(["", "even", "odd", "g1", "third", "ev"]))
def test_pages_concatenate_to_the_whole_listing(many_groups: fti.Project, limit: int, query: str) -> None:
    fs = many_groups.feature_store
    whole = fs.search_feature_groups(query, limit=1000)
    seen: list[str] = []
    offset = 0
    while True:
        page = fs.search_feature_groups(query, offset=offset, limit=limit)
        assert page.total == whole.total
        seen += [g.name for g in page]
        if not page.has_next:
            break
        offset += limit
    assert seen == [g.name for g in whole]
    assert seen == sorted(seen)
    expected = {
        f"g{i:02d}"
        for i in range(23)
        if not query
        or query in f"g{i:02d}"
        or query in ("even" if i % 2 == 0 else "odd")
        or (i % 3 == 0 and query in "third")
    }
    assert set(seen) == expected
