"""Embeddings: vector[N] features stored offline as fixed-size float32 lists and online with the row,
an embedding index kept at the latest row per key, similarity search with filters against exact
numpy search, rebuilt from the offline table after a crash, and typed errors for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti.errors import AlreadyExistsError, SchemaError, ValidationError
from fti.storage.vector.hnsw import distances_to

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DIM = 8
FEATURES = [
    fti.Feature("item_id", "int64"),
    fti.Feature("ts", "timestamp"),
    fti.Feature("category", "string"),
    fti.Feature("price", "float64"),
    fti.Feature("emb", f"vector[{DIM}]"),
]


def _items(ids: Any, hours: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = list(ids)
    return pd.DataFrame(
        {
            "item_id": ids,
            "ts": [T0 + timedelta(hours=hours)] * len(ids),
            "category": [("books", "music", "games")[i % 3] for i in ids],
            "price": np.round(rng.uniform(1, 50, len(ids)), 2),
            "emb": list(rng.standard_normal((len(ids), DIM)).astype(np.float32)),
        }
    )


def _group(project: fti.Project, metric: str = "cosine") -> Any:
    return project.feature_store.get_or_create_feature_group(
        "items", primary_key=["item_id"], event_time="ts", online_enabled=True, features=FEATURES,
        embedding_index=fti.EmbeddingIndex("emb", metric=metric),
    )  # fmt: skip


def _exact(latest: pd.DataFrame, query: np.ndarray, metric: str, k: int) -> list[int]:
    distances = distances_to(query, np.stack(latest["emb"].to_list()), metric)
    return latest["item_id"].to_numpy()[np.argsort(distances, kind="stable")[:k]].tolist()


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot"])
def test_neighbors_of_the_latest_rows_equal_exact_search(project: fti.Project, metric: str) -> None:
    items = _group(project, metric)
    first = _items(range(200), 1, seed=1)
    items.insert(first)
    newer = _items(range(0, 200, 4), 2, seed=2)  # a quarter of the items change
    items.insert(newer)
    items.insert(_items(range(1, 200, 4), 0, seed=3))  # older events: the index keeps the newer rows
    latest = pd.concat([first[~first["item_id"].isin(newer["item_id"])], newer]).sort_values("item_id")
    query = np.random.default_rng(9).standard_normal(DIM)
    found = items.find_neighbors(query, k=10)
    assert found["item_id"].tolist() == _exact(latest, query, metric, 10)
    assert list(found.columns) == ["item_id", "distance", "ts", "category", "price", "emb"]
    assert found["distance"].is_monotonic_increasing
    books = latest[latest["category"] == "books"]
    filtered = items.find_neighbors(query, k=5, filter="category = 'books' AND price < 40")
    assert filtered["item_id"].tolist() == _exact(books[books["price"] < 40], query, metric, 5)
    # offline: a fixed-size float32 list; online: the vector with the row
    assert items.read_arrow().schema.field("emb").type == pa.list_(pa.float32(), DIM)
    row = items.online_lookup([{"item_id": 4}])[0]
    assert np.array_equal(np.asarray(row["emb"], dtype=np.float32), newer.set_index("item_id").loc[4, "emb"])


def test_a_lost_or_lagging_index_is_rebuilt_from_the_offline_table(
    sqlite_project: fti.Project, tmp_path: Any
) -> None:
    items = _group(sqlite_project)
    items.insert(_items(range(50), 1, seed=1))
    query = np.ones(DIM)
    expected = items.find_neighbors(query, k=7)["item_id"].tolist()
    store = sqlite_project.backends.vectors
    store.drop(items.table_name)  # the index is lost (a crash, a deleted directory)
    assert store.count(items.table_name) == 0
    again = fti.connect(home=sqlite_project.settings.home)  # connecting catches every group up
    assert again.backends.vectors.count(items.table_name) == 50
    assert (
        again.feature_store.get_feature_group("items").find_neighbors(query, k=7)["item_id"].tolist()
        == expected
    )
    again.close()
    # an index one version behind (a crash between the online write and the index write)
    store.upsert(
        items.table_name, [], np.zeros((0, DIM)), pa.table({}), metric="cosine", version=-5, replace=True
    )
    assert items.find_neighbors(query, k=7)["item_id"].tolist() == expected
    assert items.rebuild_embedding_index() == 50


def test_a_row_without_a_vector_leaves_the_index_and_delete_drops_it(sqlite_project: fti.Project) -> None:
    items = _group(sqlite_project)
    items.insert(_items(range(10), 1, seed=1))
    cleared = _items([3], 2, seed=2)
    cleared["emb"] = [None]
    items.insert(cleared)
    assert 3 not in items.find_neighbors(np.ones(DIM), k=10)["item_id"].tolist()
    assert sqlite_project.backends.vectors.count(items.table_name) == 9
    items.delete()
    assert sqlite_project.backends.vectors.applied_version(items.table_name) is None


def test_feature_view_neighbors_carry_the_views_vectors(sqlite_project: fti.Project) -> None:
    items = _group(sqlite_project)
    items.insert(_items(range(30), 1, seed=1))
    fv = sqlite_project.feature_store.get_or_create_feature_view(
        "items_view",
        query=items.select(["category", "price"]),
        transformations={"category": "one_hot_encoder"},
    )
    fv.create_training_data()
    found = fv.find_neighbors(np.ones(DIM), k=4, filter="category = 'music'")
    assert (
        found["item_id"].tolist()
        == items.find_neighbors(np.ones(DIM), k=4, filter="category = 'music'")["item_id"].tolist()
    )
    assert list(found.columns) == [
        "item_id",
        "distance",
        "category_books",
        "category_games",
        "category_music",
        "price",
    ]
    assert found["category_music"].tolist() == [1.0] * 4


def test_bad_input_is_rejected_and_nothing_is_written(sqlite_project: fti.Project) -> None:
    items = _group(sqlite_project)
    items.insert(_items(range(5), 1, seed=1))
    wrong = _items([7, 8], 2, seed=2)
    wrong.at[1, "emb"] = np.ones(DIM + 1, dtype=np.float32)
    with pytest.raises(SchemaError, match=r"'emb' is vector\[8\], but row 1 holds 9 values"):
        items.insert(wrong)
    nan = _items([7], 2, seed=2)
    nan.at[0, "emb"] = np.full(DIM, np.nan, dtype=np.float32)
    with pytest.raises(ValidationError, match="NaN or infinite value in row 0"):
        items.insert(nan)
    assert len(items.commits()) == 1 and sqlite_project.backends.vectors.count(items.table_name) == 5
    with pytest.raises(ValidationError, match=r"has 3 values; 'emb' is vector\[8\]"):
        items.find_neighbors([1.0, 2.0, 3.0])
    with pytest.raises(ValidationError, match="NaN"):
        items.find_neighbors([float("nan")] * DIM)
    with pytest.raises(ValidationError, match="k must be an integer from 1 to 1000"):
        items.find_neighbors(np.ones(DIM), k=0)
    with pytest.raises(ValidationError, match="is not a condition on the indexed features"):
        items.find_neighbors(np.ones(DIM), filter="colour = 'red'")
    plain = sqlite_project.feature_store.get_or_create_feature_group(
        "plain", primary_key=["id"], online_enabled=True
    )
    with pytest.raises(ValidationError, match="'plain' has no embedding index"):
        plain.find_neighbors(np.ones(DIM))
    with pytest.raises(ValidationError, match="unknown metric 'hamming'"):
        fti.EmbeddingIndex("emb", metric="hamming")
    with pytest.raises(ValidationError, match="needs an online-enabled group"):
        sqlite_project.feature_store.get_or_create_feature_group(
            "offline_items",
            primary_key=["item_id"],
            features=FEATURES,
            embedding_index=fti.EmbeddingIndex("emb"),
        )
    with pytest.raises(SchemaError, match="must be a declared vector\\[N\\] feature"):
        sqlite_project.feature_store.get_or_create_feature_group(
            "bad_items", primary_key=["item_id"], online_enabled=True, features=FEATURES,
            embedding_index=fti.EmbeddingIndex("price"),
        )  # fmt: skip
    with pytest.raises(AlreadyExistsError, match="embedding index"):
        _group(sqlite_project, "l2")
    with pytest.raises(ValidationError, match="unknown dtype 'vector\\[0\\]'"):
        fti.Feature("e", "vector[0]")
    names = [g.name for g in sqlite_project.feature_store.list_feature_groups()]
    assert names == ["items", "plain"]
