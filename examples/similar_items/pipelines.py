"""Similar items: item embeddings as features and a "more like this" lookup.

The items are the 1,797 handwritten digits bundled with scikit-learn (``load_digits``, 8x8 grey
images, no download). The feature pipeline ``item_embeddings`` turns each image into a 32-number
embedding with a TruncatedSVD of the pixel matrix (the classic latent-factor step of a
recommender) and writes the items with their embedding into the online-enabled feature group
``items``, which keeps an embedding index (cosine) in step with its latest rows. ``similar()``
answers "items like this one" from the feature store: the item's stored embedding, its nearest
neighbours, optionally filtered on the other features.

Register the pipeline with ``fti pipelines deploy examples/similar_items/pipelines.py`` (see the
README).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

# `fti pipelines` imports this file by path: make the repository root importable for `examples.*`
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import fti  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

    from fti.features.feature_group import FeatureGroup

FEATURE_GROUP = "items"
DIM = 32
ADDED_AT = datetime(2026, 1, 1, tzinfo=UTC)
FEATURES = [
    fti.Feature("item_id", "int64", description="the item (the image's index in load_digits)"),
    fti.Feature("added_at", "timestamp"),
    fti.Feature("digit", "int64", description="the digit the image shows (its category)"),
    fti.Feature("ink", "float64", description="the mean pixel intensity, 0-1"),
    fti.Feature("embedding", f"vector[{DIM}]", description="TruncatedSVD of the image's pixels"),
]


def items_frame() -> pd.DataFrame:
    """The items: ``item_id``, ``added_at``, ``digit``, ``ink`` and their ``embedding``."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_digits
    from sklearn.decomposition import TruncatedSVD

    bunch = load_digits()
    pixels = bunch.data / 16.0  # 0-16 grey levels -> 0-1
    embeddings = TruncatedSVD(n_components=DIM, random_state=0).fit_transform(pixels).astype(np.float32)
    n = len(pixels)
    return pd.DataFrame(
        {
            "item_id": np.arange(n, dtype=np.int64),
            "added_at": pd.to_datetime(ADDED_AT) + pd.to_timedelta(np.arange(n), unit="s"),
            "digit": bunch.target.astype(np.int64),
            "ink": pixels.mean(axis=1),
            "embedding": list(embeddings),
        }
    )


@fti.feature_pipeline(retries=1, timeout="5m")
def item_embeddings(project: fti.Project) -> None:
    """Write the items and their embeddings into the ``items`` group (idempotent)."""
    result = items_group(project).insert(items_frame())
    print(f"inserted {result.rows} items into {FEATURE_GROUP!r} (commit {result.version})")


# --- the work, as plain functions (the pipeline above, the README and the tests call these) -----
def items_group(project: fti.Project) -> FeatureGroup:
    """The ``items`` feature group with its embedding index."""
    return project.feature_store.get_or_create_feature_group(
        FEATURE_GROUP,
        version=1,
        primary_key=["item_id"],
        event_time="added_at",
        online_enabled=True,
        features=FEATURES,
        embedding_index=fti.EmbeddingIndex("embedding", metric="cosine"),
        description="Items (handwritten digits) with a 32-number embedding for similarity search",
    )


def similar(project: fti.Project, item_id: int, k: int = 5, filter: str | None = None) -> pd.DataFrame:
    """The ``k`` items most like ``item_id`` (nearest first, itself excluded): their key, cosine
    distance and features. ``filter`` is a SQL condition on the other features, e.g. ``"ink > 0.3"``.

    Raises:
        fti.errors.NotFoundError: no item ``item_id`` in the online store.
    """
    from fti.errors import NotFoundError

    fg = project.feature_store.get_feature_group(FEATURE_GROUP, version=1)
    row = fg.online_lookup([{"item_id": item_id}])[0]
    if row is None:
        raise NotFoundError(f"no item {item_id!r} in {FEATURE_GROUP!r}; run the item_embeddings pipeline")
    found = fg.find_neighbors(row["embedding"], k=k + 1, filter=filter)
    return found[found["item_id"] != item_id].head(k).reset_index(drop=True)
