"""The vector-store contract: every invariant of ``fti.storage.vector.base.VectorStore`` as tests.

Subclass :class:`VectorStoreContract` and provide a ``vector_store`` fixture yielding a fresh,
empty store. Results are compared with exact numpy search on the same vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from fti.errors import ValidationError
from fti.storage.vector.base import METRICS, VectorStore
from fti.storage.vector.hnsw import distances_to

DIM = 16


def _data(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, pa.Table]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    keys = [f"[{i}]" for i in range(n)]
    attributes = pa.table(
        {
            "category": [("books", "music", "games")[i % 3] for i in range(n)],
            "price": pa.array(np.round(rng.uniform(1, 100, n), 2)),
        }
    )
    return keys, vectors, attributes


def _exact(query: np.ndarray, keys: list[str], vectors: np.ndarray, metric: str, k: int) -> list[str]:
    distances = distances_to(query, vectors, metric)
    return [keys[i] for i in np.argsort(distances, kind="stable")[:k]]


class VectorStoreContract:
    @pytest.fixture
    def vector_store(self) -> Any:
        raise NotImplementedError

    @pytest.mark.parametrize("metric", METRICS)
    def test_search_finds_the_exact_nearest_with_their_distances(
        self, vector_store: VectorStore, metric: str
    ) -> None:
        keys, vectors, attributes = _data(300)
        vector_store.upsert("items", keys, vectors, attributes, metric=metric, version=0)
        assert vector_store.count("items") == 300 and vector_store.applied_version("items") == 0
        for q in range(0, 300, 37):
            found = vector_store.search("items", vectors[q], 5)
            assert [key for key, _ in found] == _exact(vectors[q], keys, vectors, metric, 5)
            expected = distances_to(vectors[q], vectors[[keys.index(k) for k, _ in found]], metric)
            np.testing.assert_allclose([d for _, d in found], expected, rtol=1e-4, atol=1e-4)

    def test_upsert_replaces_a_keys_vector_and_delete_removes_it(self, vector_store: VectorStore) -> None:
        keys, vectors, attributes = _data(60)
        vector_store.upsert("items", keys, vectors, attributes, metric="l2", version=0)
        moved = vectors[7] + 100.0
        vector_store.upsert(
            "items", [keys[3]], moved[None, :], attributes.slice(3, 1), metric="l2", version=1
        )
        assert vector_store.count("items") == 60 and vector_store.applied_version("items") == 1
        assert vector_store.search("items", moved, 1)[0][0] == keys[3]
        assert keys[3] not in [k for k, _ in vector_store.search("items", vectors[3], 3)]
        vector_store.delete("items", [keys[3], "[999]"], version=2)
        assert vector_store.count("items") == 59 and vector_store.applied_version("items") == 2
        assert keys[3] not in [k for k, _ in vector_store.search("items", moved, 59)]

    def test_replace_rebuilds_and_indexes_are_isolated(self, vector_store: VectorStore) -> None:
        keys, vectors, attributes = _data(40)
        vector_store.upsert("a", keys, vectors, attributes, metric="cosine", version=3)
        vector_store.upsert("b", keys[:5], vectors[:5], attributes.slice(0, 5), metric="cosine", version=0)
        vector_store.upsert(
            "a", keys[:10], vectors[:10], attributes.slice(0, 10), metric="cosine", version=4, replace=True
        )
        assert vector_store.count("a") == 10 and vector_store.count("b") == 5
        assert {k for k, _ in vector_store.search("a", vectors[30], 40)} == set(keys[:10])
        vector_store.drop("a")
        assert vector_store.count("a") == 0 and vector_store.applied_version("a") is None
        assert vector_store.search("a", vectors[0], 3) == [] and vector_store.count("b") == 5

    def test_a_filter_applies_before_the_k_nearest_are_chosen(self, vector_store: VectorStore) -> None:
        keys, vectors, attributes = _data(400)
        vector_store.upsert("items", keys, vectors, attributes, metric="cosine", version=0)
        category = np.array(attributes.column("category").to_pylist())
        price = attributes.column("price").to_numpy()
        for condition, mask in (
            ("category = 'books'", category == "books"),
            ("category = 'music' AND price < 30", (category == "music") & (price < 30)),
        ):
            allowed = np.flatnonzero(mask)
            found = vector_store.search("items", vectors[1], 10, filter=condition)
            subset = [keys[i] for i in allowed]
            assert [k for k, _ in found] == _exact(vectors[1], subset, vectors[allowed], "cosine", 10)
        assert vector_store.search("items", vectors[1], 5, filter="price > 1000") == []
        with pytest.raises(ValidationError, match="filter"):
            vector_store.search("items", vectors[1], 5, filter="colour = 'red'")
        with pytest.raises(ValidationError, match="one SQL condition"):
            vector_store.search("items", vectors[1], 5, filter="1=1; DROP TABLE items")

    def test_a_filtered_search_sees_the_latest_writes(self, vector_store: VectorStore) -> None:
        keys, vectors, attributes = _data(90)
        vector_store.upsert("items", keys, vectors, attributes, metric="cosine", version=0)
        before = vector_store.search("items", vectors[0], 5, filter="category = 'books'")
        assert len(before) == 5
        # items 1 and 2 become books with new vectors, item 3 (a book) is deleted
        changed = np.stack([vectors[0] + 0.01, vectors[0] - 0.01]).astype(np.float32)
        books = pa.table({"category": ["books", "books"], "price": pa.array([5.0, 6.0])})
        vector_store.upsert("items", keys[1:3], changed, books, metric="cosine", version=1)
        found = vector_store.search("items", vectors[0], 3, filter="category = 'books'")
        assert {k for k, _ in found} == {keys[0], keys[1], keys[2]}
        vector_store.delete("items", [keys[3]], version=2)
        now = vectors.copy()
        now[1:3] = changed
        category = np.array(attributes.column("category").to_pylist())
        category[1:3] = "books"
        live = np.flatnonzero((category == "books") & (np.arange(90) != 3))
        expected = _exact(vectors[0], [keys[i] for i in live], now[live], "cosine", 10)
        assert [k for k, _ in vector_store.search("items", vectors[0], 10, filter="category = 'books'")] == (
            expected
        )
        other = type(vector_store)(vector_store.url)  # type: ignore[call-arg]
        try:
            found = other.search("items", vectors[0], 10, filter="category = 'books'")
            assert [k for k, _ in found] == expected
        finally:
            other.close()

    def test_another_connection_sees_the_writes(self, vector_store: VectorStore) -> None:
        keys, vectors, attributes = _data(30)
        vector_store.upsert("items", keys, vectors, attributes, metric="dot", version=5)
        other = type(vector_store)(vector_store.url)  # type: ignore[call-arg]
        try:
            assert other.applied_version("items") == 5 and other.count("items") == 30
            assert other.search("items", vectors[2], 3) == vector_store.search("items", vectors[2], 3)
            vector_store.delete("items", [keys[2]], version=6)
            assert other.applied_version("items") == 6 and other.count("items") == 29
        finally:
            other.close()
