"""The embedded vector store: an in-process HNSW graph (hnswlib) per index, persisted in a directory.

Chosen over usearch by ``benchmarks/vector_search.py`` (100k x 384 on 2 cores, same settings:
hnswlib builds in about half the time, with a higher recall@10 and a lower median query time;
figures in the README). URL: a directory
(``$FTI_HOME/vectors`` by default) or ``hnsw:///abs/path``.

Each index is a directory holding generations ``gen-<n>/`` (the graph, ``rows.parquet`` with
each label's key and attributes, ``vectors.npy`` with each label's vector, memory-mapped for exact
search over filtered subsets, ``meta.json`` with dimension, metric and applied version) and a
``CURRENT`` file naming the live generation, replaced atomically after a generation is complete:
a crash mid-write leaves the previous generation readable, one version behind, which the feature
group then rebuilds from its offline table. Writers of one index serialize on a file lock;
readers in other processes reload when ``CURRENT`` changes.

Filters are SQL predicates over the attributes, evaluated by DuckDB (no file or network access)
into the set of allowed labels; the graph is searched with that set (hnswlib's filter), and a
small set (at most 5% of the index or 2,000 keys) is searched exactly instead, since a graph
walk that rejects most nodes finds too few.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import BackendError, ValidationError
from fti.storage.vector.base import check_upsert

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

_SPACES = {"cosine": "cosine", "l2": "l2", "dot": "ip"}
M, EF_CONSTRUCTION, EF_SEARCH = 16, 100, 64
WHOLE_WALK = 500
"""An index of at most this many vectors is searched with a candidate list as long as the index,
so the walk visits every vector it can reach and the result is the exact one; a shorter list can
miss a neighbour depending on how the build's threads linked the graph (a dot-product index of
200 vectors did, rarely). The cost, at 384 dimensions: 0.22 ms a search at 500 vectors against
0.08 ms (0.42 against 0.13 at 1,000, 3 against 0.2 at 2,000: larger indexes keep the short list)."""
LABEL, KEY = "__label", "__key"


@dataclass
class _Loaded:
    generation: str
    graph: Any
    dim: int
    metric: str
    version: int | None
    rows: pa.Table
    """One row per live key: LABEL, KEY and the attribute columns."""
    labels: dict[str, int]
    next_label: int
    vectors: np.ndarray
    """Every label's vector, row = label (rows of deleted labels are never read): exact search
    over a filtered subset gathers rows here (hnswlib's ``get_items`` copies element by element,
    ~100x slower)."""
    by_label: dict[int, str] | None = None
    """The inverse of ``labels``, built on the first search after a load or a write."""
    sql: Any = None
    """A DuckDB connection with ``rows`` registered, opened by the first filtered search."""
    sql_lock: threading.Lock = field(default_factory=threading.Lock)

    def changed(self) -> None:
        """Forget what was derived from ``labels`` and ``rows`` (a write changes them)."""
        self.by_label = None
        if self.sql is not None:
            self.sql.close()
            self.sql = None


class HnswVectorStore:
    """See the module docs."""

    def __init__(self, url: str) -> None:
        path = url.split("://", 1)[1] if "://" in url else url
        self.url = url
        self.root = Path(path)
        self._cache: dict[str, _Loaded] = {}

    # --- reading ----------------------------------------------------------------------------
    def _dir(self, index: str) -> Path:
        if not index or "/" in index or index.startswith("."):
            raise ValidationError(f"invalid vector index name {index!r}")
        return self.root / index

    def _load(self, index: str) -> _Loaded | None:
        directory = self._dir(index)
        try:
            generation = (directory / "CURRENT").read_text().strip()
        except OSError:
            self._cache.pop(index, None)
            return None
        cached = self._cache.get(index)
        if cached is not None and cached.generation == generation:
            return cached
        import hnswlib
        import numpy as np
        import pyarrow.parquet as pq

        gen = directory / generation
        try:
            meta = json.loads((gen / "meta.json").read_text())
            rows = pq.read_table(gen / "rows.parquet")
            graph = hnswlib.Index(space=_SPACES[meta["metric"]], dim=meta["dim"])
            graph.load_index(
                str(gen / "graph.bin"), max_elements=max(meta["capacity"], 1), allow_replace_deleted=True
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise BackendError(
                f"vector index {index!r} in {directory} cannot be read ({exc}); rebuild it"
            ) from exc
        graph.set_ef(EF_SEARCH)
        labels = {
            k: int(lb)
            for k, lb in zip(rows.column(KEY).to_pylist(), rows.column(LABEL).to_pylist(), strict=True)
        }
        try:  # mapped, not read: pages come in as filtered searches touch them
            vectors = np.load(gen / "vectors.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise BackendError(
                f"vector index {index!r} in {directory} cannot be read ({exc}); rebuild it"
            ) from exc
        loaded = _Loaded(
            generation,
            graph,
            meta["dim"],
            meta["metric"],
            meta["version"],
            rows,
            labels,
            meta["next_label"],
            vectors,
        )
        self._cache[index] = loaded
        return loaded

    def applied_version(self, index: str) -> int | None:
        try:
            loaded = self._load(index)
        except BackendError:
            return None  # unreadable: the caller rebuilds
        return None if loaded is None else loaded.version

    def count(self, index: str) -> int:
        loaded = self._load(index)
        return 0 if loaded is None else len(loaded.labels)

    def search(
        self, index: str, vector: np.ndarray, k: int, filter: str | None = None
    ) -> list[tuple[str, float]]:
        import numpy as np

        loaded = self._load(index)
        if loaded is None or not loaded.labels:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        allowed: np.ndarray | None = None
        if filter is not None:
            allowed = allowed_labels(loaded, filter)
            if allowed.size == 0:
                return []
        live = len(loaded.labels)
        k = min(k, live if allowed is None else int(allowed.size))
        if allowed is not None and (allowed.size <= 2000 or allowed.size <= 0.05 * live):
            return self._exact(loaded, query[0], allowed, k)
        graph = loaded.graph
        # a small index is walked whole (exact, however the multi-threaded build linked it)
        graph.set_ef(max(EF_SEARCH, 2 * k, live if live <= WHOLE_WALK else 0))
        try:
            if allowed is None:
                found, distances = graph.knn_query(query, k=k)
            else:
                permitted = set(allowed.tolist())
                found, distances = graph.knn_query(query, k=k, filter=lambda label: label in permitted)
        except RuntimeError:  # the walk found fewer than k: search the candidates exactly
            candidates = (
                allowed if allowed is not None else np.fromiter(loaded.labels.values(), dtype=np.int64)
            )
            return self._exact(loaded, query[0], candidates, k)
        keys = _keys_of(loaded)
        hits = [(keys[int(lb)], float(d)) for lb, d in zip(found[0], distances[0], strict=True)]
        return sorted(hits, key=lambda hit: (hit[1], hit[0]))  # equal distances: by key, as exact search

    def _exact(
        self, loaded: _Loaded, query: np.ndarray, labels: np.ndarray, k: int
    ) -> list[tuple[str, float]]:
        import numpy as np

        distances = distances_to(query, loaded.vectors[labels], loaded.metric)
        keys = _keys_of(loaded)
        names = np.array([keys[int(label)] for label in labels])
        order = np.lexsort((names, distances))[:k]  # nearest first; equal distances by key
        return [(str(names[i]), float(distances[i])) for i in order]

    # --- writing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, index: str) -> Any:
        directory = self._dir(index)
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield directory

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
        import hnswlib
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        vectors = check_upsert(keys, vectors, metric)
        dim = int(vectors.shape[1])
        with self._locked(index) as directory:
            loaded = None if replace else self._load_for_write(index)
            if loaded is not None and (loaded.dim != dim or loaded.metric != metric):
                loaded = None  # a changed definition: start over
                replace = True
            if loaded is None:
                graph = hnswlib.Index(space=_SPACES[metric], dim=dim)
                graph.init_index(
                    max_elements=max(len(keys), 16),
                    ef_construction=EF_CONSTRUCTION,
                    M=M,
                    allow_replace_deleted=True,
                )
                schema = pa.schema(
                    [pa.field(LABEL, pa.int64()), pa.field(KEY, pa.string()), *attributes.schema]
                )
                empty = np.zeros((0, dim), dtype=np.float32)
                loaded = _Loaded("", graph, dim, metric, None, schema.empty_table(), {}, 0, empty)
            graph = loaded.graph
            loaded.changed()
            labels = []
            for key in keys:
                label = loaded.labels.get(key)
                if label is None:
                    label = loaded.next_label
                    loaded.next_label += 1
                    loaded.labels[key] = label
                labels.append(label)
            needed = loaded.next_label
            if needed > graph.get_max_elements():
                graph.resize_index(max(needed, 2 * graph.get_max_elements()))
            if len(keys):
                graph.add_items(vectors, np.asarray(labels, dtype=np.int64), num_threads=-1)
                grown = np.empty((needed, dim), dtype=np.float32)
                grown[: len(loaded.vectors)] = loaded.vectors
                grown[np.asarray(labels, dtype=np.int64)] = vectors
                loaded.vectors = grown
            kept = loaded.rows.filter(
                pc.invert(pc.is_in(loaded.rows.column(KEY), pa.array(list(keys), pa.string())))
            )
            new = attributes.add_column(0, KEY, pa.array(list(keys), pa.string())).add_column(
                0, LABEL, pa.array(labels, pa.int64())
            )
            loaded.rows = pa.concat_tables(
                [kept, new.select(kept.column_names)], promote_options="permissive"
            )
            loaded.version = version
            self._save(index, directory, loaded)

    def delete(self, index: str, keys: Sequence[str], *, version: int) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        with self._locked(index) as directory:
            loaded = self._load_for_write(index)
            if loaded is None:
                return
            loaded.changed()
            for key in keys:
                label = loaded.labels.pop(key, None)
                if label is not None:
                    loaded.graph.mark_deleted(label)
            loaded.rows = loaded.rows.filter(
                pc.invert(pc.is_in(loaded.rows.column(KEY), pa.array(list(keys), pa.string())))
            )
            loaded.version = version
            self._save(index, directory, loaded)

    def _load_for_write(self, index: str) -> _Loaded | None:
        try:
            return self._load(index)
        except BackendError:
            return None  # unreadable: a write starts a new generation from what it is given

    def _save(self, index: str, directory: Path, loaded: _Loaded) -> None:
        import numpy as np
        import pyarrow.parquet as pq

        number = 1 + max(
            (int(p.name[4:]) for p in directory.glob("gen-*") if p.name[4:].isdigit()), default=0
        )
        generation = f"gen-{number}"
        gen = directory / generation
        gen.mkdir()
        loaded.graph.save_index(str(gen / "graph.bin"))
        np.save(gen / "vectors.npy", loaded.vectors)
        loaded.vectors = np.load(gen / "vectors.npy", mmap_mode="r")  # the page cache holds it, not us
        pq.write_table(loaded.rows, gen / "rows.parquet")
        meta = {
            "dim": loaded.dim,
            "metric": loaded.metric,
            "version": loaded.version,
            "capacity": loaded.graph.get_max_elements(),
            "next_label": loaded.next_label,
        }
        (gen / "meta.json").write_text(json.dumps(meta))
        tmp = directory / "CURRENT.tmp"
        tmp.write_text(generation)
        os.replace(tmp, directory / "CURRENT")  # the switch: the new generation is live
        loaded.generation = generation
        self._cache[index] = loaded
        for old in directory.glob("gen-*"):
            if old.name != generation:
                shutil.rmtree(old, ignore_errors=True)

    def drop(self, index: str) -> None:
        self._cache.pop(index, None)
        shutil.rmtree(self._dir(index), ignore_errors=True)

    def close(self) -> None:
        self._cache.clear()


def _keys_of(loaded: _Loaded) -> dict[int, str]:
    # built once per generation, not per query: a search must not cost O(index size)
    if loaded.by_label is None:
        loaded.by_label = {label: key for key, label in loaded.labels.items()}
    return loaded.by_label


def distances_to(query: np.ndarray, vectors: np.ndarray, metric: str) -> np.ndarray:
    """Exact distances from ``query`` to each row of ``vectors`` (see ``METRICS``)."""
    import numpy as np

    q = np.asarray(query, dtype=np.float64)
    v = np.asarray(vectors, dtype=np.float64)
    if metric == "l2":
        return np.asarray(((v - q) ** 2).sum(axis=1))
    if metric == "dot":
        return np.asarray(1.0 - v @ q)
    norms = np.linalg.norm(v, axis=1) * np.linalg.norm(q)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(1.0 - (v @ q) / np.where(norms == 0, 1.0, norms))


def allowed_labels(loaded: _Loaded, filter: str) -> np.ndarray:
    """The labels of the rows matching ``filter`` (a SQL predicate over the attributes)."""
    import duckdb
    import numpy as np

    if not isinstance(filter, str) or not filter.strip() or ";" in filter:
        raise ValidationError(
            f"filter must be one SQL condition such as \"category = 'books'\", got {filter!r}"
        )
    # one connection per generation (opening one and registering the rows costs more than the
    # query); a DuckDB connection serves one statement at a time
    with loaded.sql_lock:
        if loaded.sql is None:
            loaded.sql = duckdb.connect(config={"enable_external_access": False})
            loaded.sql.register("fti_rows", loaded.rows)
        try:
            result = loaded.sql.execute(f"SELECT {LABEL} FROM fti_rows WHERE {filter}").fetchnumpy()
        except duckdb.Error as exc:
            columns = [c for c in loaded.rows.column_names if c not in (LABEL, KEY)]
            raise ValidationError(
                f"filter {filter!r} is not a condition on the indexed features {columns}: "
                f"{str(exc).splitlines()[0]}"
            ) from None
    return np.asarray(result[LABEL], dtype=np.int64)
