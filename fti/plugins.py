"""The backend registry: one URL-scheme table per storage role, imported lazily.

A backend is named by ``module:Class`` so that choosing a URL imports only that backend's
dependencies. Missing optional dependencies fail with the extra to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError

if TYPE_CHECKING:
    from fti.storage.artifacts.base import ArtifactStore
    from fti.storage.buffer.base import PushBuffer
    from fti.storage.metadata.base import Catalog
    from fti.storage.offline.base import OfflineStore
    from fti.storage.online.base import OnlineStore
    from fti.storage.vector.base import VectorStore

# scheme -> (module:Class, extra to install when the import fails)
CATALOG_BACKENDS: dict[str, tuple[str, str | None]] = {
    "sqlite": ("fti.storage.metadata.sql:SqlCatalog", None),
    "postgresql": ("fti.storage.metadata.sql:SqlCatalog", "postgres"),
    "postgresql+psycopg": ("fti.storage.metadata.sql:SqlCatalog", "postgres"),
    "postgres": ("fti.storage.metadata.sql:SqlCatalog", "postgres"),
}
OFFLINE_BACKENDS: dict[str, tuple[str, str | None]] = {
    "": ("fti.storage.offline.delta:DeltaOfflineStore", None),
    "file": ("fti.storage.offline.delta:DeltaOfflineStore", None),
    "s3": ("fti.storage.offline.delta:DeltaOfflineStore", None),
}
ONLINE_BACKENDS: dict[str, tuple[str, str | None]] = {
    "sqlite": ("fti.storage.online.sqlite:SqliteOnlineStore", None),
    "redis": ("fti.storage.online.redis:RedisOnlineStore", "redis"),
    "rediss": ("fti.storage.online.redis:RedisOnlineStore", "redis"),
}
VECTOR_BACKENDS: dict[str, tuple[str, str | None]] = {
    "": ("fti.storage.vector.hnsw:HnswVectorStore", "vectors"),
    "file": ("fti.storage.vector.hnsw:HnswVectorStore", "vectors"),
    "hnsw": ("fti.storage.vector.hnsw:HnswVectorStore", "vectors"),
    "lancedb": ("fti.storage.vector.lance:LanceVectorStore", "lancedb"),
    "lancedb+s3": ("fti.storage.vector.lance:LanceVectorStore", "lancedb"),
}
BUFFER_BACKENDS: dict[str, tuple[str, str | None]] = {
    "sqlite": ("fti.storage.buffer.sqlite:SqlitePushBuffer", None),
    "redis": ("fti.storage.buffer.redis:RedisPushBuffer", "redis"),
    "rediss": ("fti.storage.buffer.redis:RedisPushBuffer", "redis"),
}
ARTIFACT_BACKENDS: dict[str, tuple[str, str | None]] = {
    "": ("fti.storage.artifacts.fsspec:FsspecArtifactStore", None),
    "file": ("fti.storage.artifacts.fsspec:FsspecArtifactStore", None),
    "s3": ("fti.storage.artifacts.fsspec:FsspecArtifactStore", "s3"),
    "memory": ("fti.storage.artifacts.fsspec:FsspecArtifactStore", None),
}


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _build(role: str, table: dict[str, tuple[str, str | None]], url: str, **options: Any) -> Any:
    scheme = scheme_of(url)
    if scheme not in table:
        known = ", ".join(f"{s}://" if s else "a plain path" for s in table)
        raise BackendError(f"unsupported {role} URL {url!r}: supported schemes are {known}")
    target, extra = table[scheme]
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; install fti[{extra}] (pip install 'fti[{extra}]')" if extra else ""
        raise BackendError(f"the {scheme}:// {role} backend cannot be imported: {exc}{hint}") from exc
    return getattr(module, class_name)(url, **options)


def catalog_from_url(url: str) -> Catalog:
    return _build("catalog", CATALOG_BACKENDS, url)  # type: ignore[no-any-return]


def offline_store_from_url(url: str, storage_options: dict[str, str] | None = None) -> OfflineStore:
    """The offline store at ``url``; ``storage_options`` are delta-rs (object_store) options."""
    if storage_options and scheme_of(url) in ("s3", "s3a"):
        return _build("offline store", OFFLINE_BACKENDS, url, storage_options=storage_options)  # type: ignore[no-any-return]
    return _build("offline store", OFFLINE_BACKENDS, url)  # type: ignore[no-any-return]


def online_store_from_url(url: str) -> OnlineStore:
    return _build("online store", ONLINE_BACKENDS, url)  # type: ignore[no-any-return]


def vector_store_from_url(url: str) -> VectorStore:
    return _build("vector store", VECTOR_BACKENDS, url)  # type: ignore[no-any-return]


def artifact_store_from_url(url: str, storage_options: dict[str, Any] | None = None) -> ArtifactStore:
    """The artifact store at ``url``; ``storage_options`` are fsspec options (s3fs for s3://)."""
    if storage_options and scheme_of(url) in ("s3", "s3a"):
        return _build("artifact store", ARTIFACT_BACKENDS, url, storage_options=storage_options)  # type: ignore[no-any-return]
    return _build("artifact store", ARTIFACT_BACKENDS, url)  # type: ignore[no-any-return]


def push_buffer_from_url(url: str) -> PushBuffer:
    return _build("push buffer", BUFFER_BACKENDS, url)  # type: ignore[no-any-return]
