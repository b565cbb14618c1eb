"""Embeddings as features: ``vector[N]`` columns, an embedding index per online-enabled group, and
similarity search (``fg.find_neighbors`` / ``fv.find_neighbors``).

.. code-block:: python

    items = fs.get_or_create_feature_group(
        "items", primary_key=["item_id"], online_enabled=True,
        features=[fti.Feature("item_id", "int64"), fti.Feature("category", "string"),
                  fti.Feature("emb", "vector[64]")],
        embedding_index=fti.EmbeddingIndex("emb", metric="cosine"))
    items.find_neighbors(query, k=10, filter="category = 'books'")

The index holds the **latest row per key**, exactly what the online store holds: after every
online write the stored rows of the written keys are read back and upserted (a row whose vector
is null leaves the index). It lives in the vector store role (:mod:`fti.storage.vector`,
``FTI_VECTOR_URL``), which records the offline version it applied. An index that lags the offline
table (a crash between the writes, a lost or unreadable index) is rebuilt from the offline
table's latest rows per key, by the next insert, ``fg.materialize()``, ``fti.connect`` or
``fg.rebuild_embedding_index()``.

A filter is a SQL predicate over the group's other (scalar) features. Distances (lower is nearer)
are recomputed exactly from the found rows' vectors: ``cosine`` is 1 - cosine similarity, ``l2``
the squared Euclidean distance, ``dot`` is 1 - the inner product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti.errors import SchemaError, ValidationError
from fti.storage.vector.base import METRICS
from fti.types import vector_dim

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from fti.features.feature_group import FeatureGroup
    from fti.features.records import FeatureGroupMeta

MAX_K = 1000


@dataclass(frozen=True)
class EmbeddingIndex:
    """An embedding index on a ``vector[N]`` feature of an online-enabled group."""

    column: str
    metric: str = "cosine"

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise ValidationError(
                f"EmbeddingIndex needs the name of a vector[N] feature, got {self.column!r}"
            )
        if self.metric not in METRICS:
            raise ValidationError(
                f"unknown metric {self.metric!r} for EmbeddingIndex; use one of {', '.join(METRICS)}"
            )

    def to_dict(self) -> dict[str, str]:
        return {"column": self.column, "metric": self.metric}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EmbeddingIndex | None:
        return None if not data else cls(str(data["column"]), str(data.get("metric", "cosine")))


def check_index(
    index: Any, online_enabled: bool, features: list[Any] | None, name: str
) -> dict[str, str] | None:
    """Validate ``embedding_index=`` of a group definition; returns what the catalog stores."""
    if index is None:
        return None
    if not isinstance(index, EmbeddingIndex):
        raise ValidationError(
            f"embedding_index must be fti.EmbeddingIndex(column, metric=...), got {index!r}"
        )
    if not online_enabled:
        raise ValidationError(
            f"an embedding index needs an online-enabled group (it indexes the latest row per key); "
            f"create {name!r} with online_enabled=True"
        )
    if features is not None:
        dtypes = {f.name: f.dtype for f in features}
        if vector_dim(dtypes.get(index.column, "")) is None:
            raise SchemaError(
                f"embedding index column {index.column!r} must be a declared vector[N] feature, e.g. "
                f"fti.Feature({index.column!r}, 'vector[384]'); got {dtypes.get(index.column, 'no such feature')}"
            )
    return index.to_dict()


def cast_vectors(column: pa.ChunkedArray, dtype: str, name: str) -> pa.ChunkedArray | None:
    """``column`` as ``vector[N]`` values (fixed-size float32 lists): list columns of numbers of
    exactly N finite values (or null rows). None when the column is not a list of numbers."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    dim = vector_dim(dtype)
    assert dim is not None
    source = column.type
    if pa.types.is_null(source):  # only missing vectors
        return pa.chunked_array([pa.nulls(len(column), pa.list_(pa.float32(), dim))])
    if not (
        pa.types.is_list(source) or pa.types.is_large_list(source) or pa.types.is_fixed_size_list(source)
    ):
        return None
    if not (pa.types.is_floating(source.value_type) or pa.types.is_integer(source.value_type)):
        return None
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    valid = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    wrong = np.flatnonzero(valid & (lengths != dim))
    if wrong.size:
        raise SchemaError(
            f"column {name!r} is {dtype}, but row {int(wrong[0])} holds {int(lengths[wrong[0]])} values "
            f"({wrong.size} row(s) of the wrong dimension); every vector needs exactly {dim}"
        )
    flat = pc.list_flatten(array).cast(pa.float32()).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~np.isfinite(flat))
    if bad.size:
        row = int(np.flatnonzero(valid)[bad[0] // dim])
        raise ValidationError(
            f"column {name!r} holds a NaN or infinite value in row {row}; vectors must be finite"
        )
    out = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim)
    if not valid.all():  # null rows: rebuild with a validity mask
        full = np.zeros((len(valid), dim), dtype=np.float32)
        full[valid] = flat.reshape(-1, dim)
        out = pa.FixedSizeListArray.from_arrays(
            pa.array(full.reshape(-1), pa.float32()), dim, mask=pa.array(~valid)
        )
    return pa.chunked_array([out])


def restore_vectors(table: pa.Table, features: list[Any] | None) -> pa.Table:
    """``table`` with its ``vector[N]`` columns as fixed-size float32 lists again: Delta Lake has
    no fixed-size list type, so the offline table stores them as ``array<float>``."""
    import pyarrow as pa

    from fti.types import arrow_type

    for feature in features or []:
        if vector_dim(feature.dtype) is not None and feature.name in table.column_names:
            i = table.column_names.index(feature.name)
            target = arrow_type(feature.dtype)
            if table.schema.field(i).type != target:
                table = table.set_column(i, pa.field(feature.name, target), table.column(i).cast(target))
    return table


# --- keeping the index in step with the online store -------------------------------------------
def _encode(key: tuple[Any, ...]) -> str:
    import orjson

    return orjson.dumps(list(key), default=str).decode()


def _decode(key: str) -> list[Any]:
    import orjson

    return list(orjson.loads(key))


def _rows_to_index(
    fg: FeatureGroup, rows: list[dict[str, Any] | None], keys: list[tuple[Any, ...]], index: EmbeddingIndex
) -> tuple[list[str], Any, pa.Table, list[str]]:
    """Keys, vectors and attributes of the rows that have a vector; keys of those that do not."""
    import numpy as np
    import pyarrow as pa

    from fti.types import arrow_type

    scalar = [f for f in fg.features or [] if vector_dim(f.dtype) is None]
    present: list[int] = []
    gone: list[str] = []
    for i, row in enumerate(rows):
        if row is None or row.get(index.column) is None:
            gone.append(_encode(keys[i]))
        else:
            present.append(i)
    dim = vector_dim(next(f.dtype for f in fg.features or [] if f.name == index.column)) or 0
    kept = [row for row in rows if row is not None and row.get(index.column) is not None]
    vectors = np.asarray([row[index.column] for row in kept], dtype=np.float32).reshape(len(kept), dim)
    attributes = pa.table(
        {f.name: pa.array([rows[i].get(f.name) for i in present], arrow_type(f.dtype)) for f in scalar}  # type: ignore[union-attr]
    )
    return [_encode(keys[i]) for i in present], vectors, attributes, gone


def sync(fg: FeatureGroup, latest: pa.Table, version: int) -> None:
    """After the online store applied ``version`` with ``latest`` (its rows of this write): bring
    the index to the same latest rows, or rebuild it when it lags."""
    index = EmbeddingIndex.from_dict(fg.embedding_index_record)
    if index is None:
        return
    store = fg.project.backends.vectors
    if store.applied_version(fg.table_name) != (version - 1 if version else None):
        rebuild(fg)
        return
    keys = [tuple(row[k] for k in fg.primary_key) for row in latest.select(fg.primary_key).to_pylist()]
    rows = fg.project.backends.online.read(fg.table_name, keys)  # the latest per key, as stored
    found, vectors, attributes, gone = _rows_to_index(fg, rows, keys, index)
    if gone:
        store.delete(fg.table_name, gone, version=version)
    store.upsert(fg.table_name, found, vectors, attributes, metric=index.metric, version=version)


def catch_up(fg: FeatureGroup) -> bool:
    """Rebuild the index when it lags the offline table; True when it did."""
    if fg.embedding_index_record is None:
        return False
    version = fg.project.backends.offline.version(fg.table_name)
    if version is None or fg.project.backends.vectors.applied_version(fg.table_name) == version:
        return False
    rebuild(fg)
    return True


def rebuild(fg: FeatureGroup) -> int:
    """Replace the index with the latest row per key of the offline table; returns keys indexed."""
    from fti.features import ingestion

    index = EmbeddingIndex.from_dict(fg.embedding_index_record)
    assert index is not None
    offline = fg.project.backends.offline
    version = offline.version(fg.table_name)
    store = fg.project.backends.vectors
    if version is None:
        store.drop(fg.table_name)
        return 0
    latest = ingestion.latest_per_key(
        offline.dataset(fg.table_name, version=version), fg.primary_key, fg.event_time
    )
    keys = [tuple(row[k] for k in fg.primary_key) for row in latest.select(fg.primary_key).to_pylist()]
    rows = latest.to_pylist()
    found, vectors, attributes, _ = _rows_to_index(fg, rows, keys, index)
    store.upsert(
        fg.table_name, found, vectors, attributes, metric=index.metric, version=version, replace=True
    )
    return len(found)


# --- search --------------------------------------------------------------------------------------
def find_neighbors(fg: FeatureGroup, vector: Any, k: int, filter: str | None) -> pd.DataFrame:
    """:meth:`FeatureGroup.find_neighbors`."""
    import numpy as np
    import pandas as pd

    from fti.storage.vector.hnsw import distances_to

    index = EmbeddingIndex.from_dict(fg.embedding_index_record)
    if index is None:
        raise ValidationError(
            f"feature group {fg.name!r} has no embedding index; create it with "
            "embedding_index=fti.EmbeddingIndex('<vector column>', metric='cosine')"
        )
    query = _check_query(fg, index, vector)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValidationError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    catch_up(fg)
    found = fg.project.backends.vectors.search(fg.table_name, query, k, filter)
    keys = [tuple(_decode(key)) for key, _ in found]
    rows = fg.project.backends.online.read(fg.table_name, keys)
    hits = [(row, key) for row, key in zip(rows, keys, strict=True) if row is not None]
    columns = [f.name for f in fg.features or []]
    if not hits:
        return pd.DataFrame(
            columns=[*fg.primary_key, "distance", *[c for c in columns if c not in fg.primary_key]]
        )
    vectors = np.asarray([row[index.column] for row, _ in hits], dtype=np.float32)
    distances = distances_to(query, vectors, index.metric)
    order = np.argsort(distances, kind="stable")
    records = []
    for i in order:
        row = hits[i][0]
        records.append(
            {
                **{k: row[k] for k in fg.primary_key},
                "distance": float(distances[i]),
                **{c: row.get(c) for c in columns if c not in fg.primary_key},
            }
        )
    return pd.DataFrame.from_records(records)


def _check_query(fg: FeatureGroup, index: EmbeddingIndex, vector: Any) -> np.ndarray:
    import numpy as np

    dim = vector_dim(next((f.dtype for f in fg.features or [] if f.name == index.column), ""))
    try:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise ValidationError(
            f"the query vector must be a list or array of numbers, got {type(vector).__name__}"
        ) from None
    if dim is not None and query.size != dim:
        raise ValidationError(f"the query vector has {query.size} values; {index.column!r} is vector[{dim}]")
    if not np.isfinite(query).all():
        raise ValidationError("the query vector holds NaN or infinite values")
    return query


class EmbeddingsMixin:
    """The similarity-search part of :class:`~fti.features.feature_group.FeatureGroup`."""

    _meta: FeatureGroupMeta

    @property
    def embedding_index(self) -> EmbeddingIndex | None:
        """The group's embedding index (column and metric), or None."""
        return EmbeddingIndex.from_dict(self._meta.embedding_index)

    @property
    def embedding_index_record(self) -> dict[str, Any] | None:
        return self._meta.embedding_index

    def find_neighbors(self, vector: Any, k: int = 10, filter: str | None = None) -> pd.DataFrame:
        """The ``k`` rows whose embedding is nearest to ``vector`` (latest row per key).

        Args:
            vector: N numbers (the index column is ``vector[N]``).
            k: How many neighbours (1-1000).
            filter: A SQL condition on the group's scalar features, applied before the ``k``
                nearest are chosen, e.g. ``"category = 'books' AND price < 20"``.

        Returns:
            A DataFrame, nearest first: the primary key, ``distance`` and the row's features.

        Raises:
            ValidationError: no index on this group, a vector of the wrong dimension or with NaN,
                a bad ``k`` or filter.
        """
        return find_neighbors(self, vector, k, filter)  # type: ignore[arg-type]

    def rebuild_embedding_index(self) -> int:
        """Rebuild the index from the offline table's latest rows per key; returns keys indexed."""
        if self._meta.embedding_index is None:
            raise ValidationError("this feature group has no embedding index")
        return rebuild(self)  # type: ignore[arg-type]
