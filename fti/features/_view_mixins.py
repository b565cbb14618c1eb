"""Parts of the :class:`~fti.features.feature_view.FeatureView` API that live beside it: on-demand
features (:mod:`fti.features.on_demand`) and similarity search over embeddings
(:mod:`fti.features.embeddings`)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from fti.features._project import FeatureProject
    from fti.features.on_demand import OnDemandPlan
    from fti.features.query import Query
    from fti.features.records import FeatureViewMeta


class OnDemandViewMixin:
    """The on-demand functions and request fields of a feature view version."""

    _meta: FeatureViewMeta
    _project: FeatureProject

    if TYPE_CHECKING:

        @property
        def query(self) -> Query: ...

        @property
        def name(self) -> str: ...

        @property
        def version(self) -> int: ...

    @property
    def on_demand(self) -> list[dict[str, Any]]:
        """The view's on-demand functions as recorded: import path, source SHA-256, inputs,
        outputs (``[[name, dtype], ...]``) and dropped inputs, in order."""
        return [dict(record) for record in self._meta.on_demand]

    @property
    def request_fields(self) -> list[str]:
        """Columns a serving request must send (never looked up in the online store)."""
        return list(self._meta.request_fields)

    @cached_property
    def on_demand_plan(self) -> OnDemandPlan:
        """The on-demand functions over the view's joined columns; also what decides the model
        features before transformation (``plan.features``). Imports nothing until applied."""
        from fti.features.on_demand import OnDemandPlan

        what = f"feature view {self.name!r} version {self.version}"
        return OnDemandPlan(
            self._meta.on_demand, self._meta.request_fields, self.query, self._meta.labels, what
        )


class NeighborsViewMixin:
    """Similarity search from a feature view over its spine group's embedding index."""

    if TYPE_CHECKING:

        @property
        def query(self) -> Query: ...

        def get_feature_vectors(
            self,
            entry: Any = ...,
            passed_features: Any = ...,
            return_type: str = ...,
            allow_missing: bool = ...,
            *,
            entries: Any = ...,
        ) -> Any: ...

    def find_neighbors(self, vector: Any, k: int = 10, filter: str | None = None) -> pd.DataFrame:
        """The ``k`` entities whose embedding (in the spine group's index) is nearest to ``vector``,
        with their distance and the view's (transformed) feature vector.

        See :meth:`FeatureGroup.find_neighbors <fti.features.embeddings.EmbeddingsMixin.find_neighbors>`;
        a view with request fields cannot build vectors without a request and raises ValidationError.
        """
        import pandas as pd

        spine = self.query.spine
        found = spine.find_neighbors(vector, k=k, filter=filter)
        keys = spine.primary_key
        if found.empty:
            empty: pd.DataFrame = found[[*keys, "distance"]]
            return empty
        entries = found[keys].to_dict("records")
        vectors = self.get_feature_vectors(entries=entries, return_type="pandas", allow_missing=True)
        vectors = vectors.drop(columns=[c for c in keys if c in vectors.columns])
        out: pd.DataFrame = pd.concat([found[[*keys, "distance"]].reset_index(drop=True), vectors], axis=1)
        return out
