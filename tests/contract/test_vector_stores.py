"""Every vector store passes the one contract suite: the embedded HNSW index (a temp directory) and
LanceDB (a local directory, and a bucket of the S3-compatible server the tests start)."""

from __future__ import annotations

import uuid
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


def _lancedb_s3(request: pytest.FixtureRequest) -> VectorStore:
    s3 = request.getfixturevalue("s3_server")
    monkeypatch = request.getfixturevalue("monkeypatch")
    for name, value in {
        "FTI_S3_ENDPOINT_URL": s3.endpoint_url,
        "FTI_S3_REGION": s3.region,
        "FTI_S3_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"vectors-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(bucket)
    return LanceVectorStore(f"lancedb+s3://{bucket}/indexes")


IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest], VectorStore]] = {
    "hnsw": _hnsw,
    "lancedb": _lancedb,
    "lancedb-s3": _lancedb_s3,
}


class TestVectorStores(VectorStoreContract):
    @pytest.fixture(params=list(IMPLEMENTATIONS))
    def vector_store(self, request: pytest.FixtureRequest) -> Iterator[Any]:
        store = IMPLEMENTATIONS[request.param](request)
        yield store
        store.close()
