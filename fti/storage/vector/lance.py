"""The vector store on LanceDB: a Lance table per index, on a local directory or on S3.

URLs: ``lancedb:///abs/path`` (a local directory) or ``lancedb+s3://bucket/prefix`` (S3 with the
``FTI_S3_*`` settings and the AWS credentials of the environment). A table holds one row per
key: ``__key``, ``vector`` (fixed-size float32) and the attribute columns; upserts are Lance
``merge_insert`` on the key, a rebuild overwrites the table, and filters are LanceDB's SQL
predicates applied before the nearest rows are chosen (``prefilter``). The applied offline
version of every index is a row of the ``__fti_versions`` table, written after the rows.

Searches are exact (Lance scans the vectors: no ANN index is built); distances are recomputed
exactly from the returned vectors so every backend reports the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, ValidationError
from fti.storage.vector.base import check_upsert
from fti.storage.vector.hnsw import distances_to

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

KEY, VECTOR, VERSIONS = "__key", "vector", "__fti_versions"


class LanceVectorStore:
    """See the module docs."""

    def __init__(self, url: str) -> None:
        scheme, _, rest = url.partition("://")
        self.url = url
        self.uri = f"s3://{rest}" if scheme == "lancedb+s3" else "/" + rest.lstrip("/")
        self._db: Any = None

    @property
    def db(self) -> Any:
        if self._db is None:
            os.environ.setdefault("LANCE_LOG", "error")  # Lance's Rust logger warns on stderr
            import lancedb

            options: dict[str, str] = {}
            if self.uri.startswith("s3://"):
                from fti.config import Settings

                settings = Settings()
                if settings.s3_endpoint_url:
                    options["endpoint"] = settings.s3_endpoint_url
                if settings.s3_region:
                    options["region"] = settings.s3_region
                if settings.s3_allow_http:
                    options["allow_http"] = "true"
            try:
                self._db = lancedb.connect(self.uri, storage_options=options or None)
            except Exception as exc:
                raise BackendError(f"cannot open the LanceDB vector store at {self.uri}: {exc}") from exc
        return self._db

    def _table(self, index: str) -> Any:
        if index not in self._names():
            return None
        return self.db.open_table(index)

    def _names(self) -> list[str]:
        listing = self.db.list_tables() if hasattr(self.db, "list_tables") else self.db.table_names()
        return list(getattr(listing, "tables", listing))

    def _state(self, index: str) -> dict[str, Any] | None:
        """The index's row of the versions table: ``version`` and ``metric``."""
        import pyarrow.compute as pc

        if VERSIONS not in self._names() or index not in self._names():
            return None
        versions = self.db.open_table(VERSIONS).to_arrow()
        found = versions.filter(pc.equal(versions.column("index"), index)).to_pylist()
        return found[0] if found else None

    def applied_version(self, index: str) -> int | None:
        state = self._state(index)
        return None if state is None else int(state["version"])

    def _mark(self, index: str, version: int, metric: str | None = None) -> None:
        import pyarrow as pa

        if metric is None:
            metric = self._metric(index)
        row = pa.table({"index": [index], "version": pa.array([version], pa.int64()), "metric": [metric]})
        if VERSIONS not in self._names():
            self.db.create_table(VERSIONS, row)
            return
        table = self.db.open_table(VERSIONS)
        table.merge_insert("index").when_matched_update_all().when_not_matched_insert_all().execute(row)

    def count(self, index: str) -> int:
        table = self._table(index)
        return 0 if table is None else int(table.count_rows())

    def upsert(
        self,
        index: str,
        keys: Sequence[str],
        vectors: np.ndarray,
        attributes: pa.Table,
        *,
        metric: str,
        version: int,
        replace: bool = False,
    ) -> None:
        import pyarrow as pa

        vectors = check_upsert(keys, vectors, metric)
        dim = int(vectors.shape[1])
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dim)
        data = attributes.add_column(0, VECTOR, column).add_column(0, KEY, pa.array(list(keys), pa.string()))
        table = None if replace else self._table(index)
        if table is not None and table.schema.field(VECTOR).type != column.type:
            table = None  # a changed dimension: start over
        if table is None:
            self.db.create_table(index, data, mode="overwrite")
        elif len(keys):
            table.merge_insert(KEY).when_matched_update_all().when_not_matched_insert_all().execute(data)
        self._mark(index, version, metric)

    def delete(self, index: str, keys: Sequence[str], *, version: int) -> None:
        table = self._table(index)
        if table is None:
            return
        if keys:
            quoted = ", ".join("'" + key.replace("'", "''") + "'" for key in keys)
            table.delete(f"{KEY} IN ({quoted})")
        self._mark(index, version)

    def search(
        self, index: str, vector: np.ndarray, k: int, filter: str | None = None
    ) -> list[tuple[str, float]]:
        import numpy as np

        table = self._table(index)
        if table is None:
            return []
        if filter is not None and (not isinstance(filter, str) or not filter.strip() or ";" in filter):
            raise ValidationError(
                f"filter must be one SQL condition such as \"category = 'books'\", got {filter!r}"
            )
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        metric = self._metric(index)
        search = table.search(query, vector_column_name=VECTOR).distance_type(metric).limit(k)
        if filter is not None:
            search = search.where(filter, prefilter=True)
        try:
            found = search.select([KEY, VECTOR, "_distance"]).to_arrow()
        except Exception as exc:
            if filter is None:
                raise BackendError(f"LanceDB search of {index!r} failed: {exc}") from exc
            raise ValidationError(
                f"filter {filter!r} is not a condition on the indexed features: {exc}"
            ) from None
        if found.num_rows == 0:
            return []
        vectors = np.asarray(found.column(VECTOR).to_pylist(), dtype=np.float32)
        distances = distances_to(query, vectors, metric)
        order = np.argsort(distances, kind="stable")
        keys = found.column(KEY).to_pylist()
        return [(keys[i], float(distances[i])) for i in order]

    def _metric(self, index: str) -> str:
        state = self._state(index)
        return "cosine" if state is None else str(state["metric"])

    def drop(self, index: str) -> None:
        if index in self._names():
            self.db.drop_table(index)

    def close(self) -> None:
        self._db = None
