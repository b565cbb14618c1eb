"""Every vector store passes the one contract suite: the embedded HNSW index (a temp directory) and
LanceDB (a local directory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fti.storage.vector.base import VectorStore
from fti.storage.vector.hnsw import HnswVectorStore
from fti.storage.vector.lance import LanceVectorStore
from fti.testing.contracts.vector import VectorStoreContract


def _hnsw(request: pytest.FixtureRequest) -> VectorStore:
    return HnswVectorStore(str(request.getfixturevalue("tmp_path") / "vectors"))


def _lancedb(request: pytest.FixtureRequest) -> VectorStore:
    return LanceVectorStore(f"lancedb://{request.getfixturevalue('tmp_path') / 'lance'}")


IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest], VectorStore]] = {
    "hnsw": _hnsw,
    "lancedb": _lancedb,
}


class TestVectorStores(VectorStoreContract):
    @pytest.fixture(params=list(IMPLEMENTATIONS))
    def vector_store(self, request: pytest.FixtureRequest) -> Iterator[Any]:
        store = IMPLEMENTATIONS[request.param](request)
        yield store
        store.close()
