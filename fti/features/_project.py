"""What the feature domain needs of a project: identity, settings, three storage roles, two facades.

:class:`fti.project.Project` satisfies these Protocols; naming the contract here keeps
``fti.features`` from depending on the composition root that imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fti.config import Settings
    from fti.features.feature_store import FeatureStore
    from fti.registry.model_registry import ModelRegistry
    from fti.storage.buffer.base import PushBuffer
    from fti.storage.metadata.base import Catalog
    from fti.storage.offline.base import OfflineStore
    from fti.storage.online.base import OnlineStore
    from fti.storage.vector.base import VectorStore


class FeatureBackends(Protocol):
    """The storage roles feature groups and views use."""

    @property
    def catalog(self) -> Catalog:
        """Definitions, commits and training-dataset records (see :mod:`fti.features.records`)."""
        ...

    @property
    def offline(self) -> OfflineStore:
        """Feature-group history and training-dataset rows (Delta tables)."""
        ...

    @property
    def online(self) -> OnlineStore:
        """The latest row per key of online-enabled groups."""
        ...

    @property
    def vectors(self) -> VectorStore:
        """Embedding indexes of online-enabled groups (see :mod:`fti.features.embeddings`)."""
        ...

    @property
    def buffer(self) -> PushBuffer:
        """Pushed rows waiting for their offline commit (``fg.push``)."""
        ...


class FeatureProject(Protocol):
    """The project a feature group or view belongs to."""

    @property
    def id(self) -> int:
        """The catalog id every feature record is scoped by."""
        ...

    @property
    def name(self) -> str:
        """Prefixes the offline table names."""
        ...

    @property
    def backends(self) -> FeatureBackends: ...

    @property
    def settings(self) -> Settings:
        """Where the stores live (the Spark engine reaches the offline store's files with them)."""
        ...

    def spark(self) -> Any:
        """The SparkSession of the Spark engine (``engine="spark"``, inserts of Spark DataFrames)."""
        ...

    @property
    def feature_store(self) -> FeatureStore:
        """Resolves the feature groups a stored feature-view query names."""
        ...

    @property
    def model_registry(self) -> ModelRegistry:
        """Finds the models trained from a feature view (``fv.models()``)."""
        ...
