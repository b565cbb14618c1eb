"""Similarity search at k=10 on 100,000 x 384 vectors: fti's vector stores against exact search.

Data: 100,000 float32 vectors of dimension 384 around 200 random centres (embeddings cluster),
and 500 queries drawn the same way; cosine distance. Measured in the same run:

- **exact**: numpy, one matrix-vector product over the normalized vectors per query (the
  reference, and the ground truth of recall@10);
- **hnsw**: fti's embedded store (``HnswVectorStore``: hnswlib, M=16, ef_construction=100,
  ef_search=64), through its ``search`` (key mapping included); build = ``upsert`` of all rows,
  persisted;
- **usearch**: the alternative embedded HNSW library at the same settings, raw (what chose hnswlib);
- **lancedb**: fti's ``LanceVectorStore`` on a local directory (exact scans, no ANN index).

Per backend: build seconds, recall@10 against exact, queries per second and p50/p99 latency (one
query at a time, one client), and the speed-up over exact (ratio of QPS, and of p50 latency).

Run: .venv/bin/python -m benchmarks.vector_search [--n 100000 --dim 384 --queries 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks._report import percentile, row
from fti.storage.vector.hnsw import HnswVectorStore
from fti.storage.vector.lance import LanceVectorStore


def data(n: int, dim: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((200, dim)).astype(np.float32)
    x = centres[rng.integers(0, 200, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    q = centres[rng.integers(0, 200, queries)] + 0.5 * rng.standard_normal((queries, dim)).astype(np.float32)
    return x.astype(np.float32), q.astype(np.float32)


def timed_queries(
    search: Callable[[np.ndarray], list[int]], queries: np.ndarray
) -> tuple[list[list[int]], list[float]]:
    found, latencies = [], []
    for q in queries:
        start = time.perf_counter()
        found.append(search(q))
        latencies.append(time.perf_counter() - start)
    return found, latencies


def report(
    label: str,
    build: float,
    found: list[list[int]],
    truth: list[list[int]],
    latencies: list[float],
    exact: list[float],
) -> None:
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))
    qps, exact_qps = len(latencies) / sum(latencies), len(exact) / sum(exact)
    row(
        label,
        build_s=build,
        recall_at_10=recall,
        qps=qps,
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
        qps_x_exact=qps / exact_qps,
        p50_x_exact=percentile(exact, 50) / percentile(latencies, 50),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--skip-usearch", action="store_true")
    args = parser.parse_args()
    x, queries = data(args.n, args.dim, args.queries)
    keys = [f"[{i}]" for i in range(args.n)]
    attributes = pa.table({"bucket": pa.array(np.arange(args.n) % 10)})
    root = Path(tempfile.mkdtemp(prefix="fti-bench-vectors-"))
    print(f"{args.n:,} x {args.dim} float32, {args.queries} queries, k=10, cosine", flush=True)

    normalized = x / np.linalg.norm(x, axis=1, keepdims=True)

    def exact(q: np.ndarray) -> list[int]:
        scores = normalized @ (q / np.linalg.norm(q))
        top = np.argpartition(-scores, 10)[:10]
        return top[np.argsort(-scores[top])].tolist()

    truth, exact_latencies = timed_queries(exact, queries)
    report("exact (numpy)", 0.0, truth, truth, exact_latencies, exact_latencies)

    store: Any = HnswVectorStore(str(root / "hnsw"))
    start = time.perf_counter()
    store.upsert("bench", keys, x, attributes, metric="cosine", version=0)
    build = time.perf_counter() - start
    found, latencies = timed_queries(
        lambda q: [int(k[1:-1]) for k, _ in store.search("bench", q, 10)], queries
    )
    report("fti hnsw (hnswlib)", build, found, truth, latencies, exact_latencies)
    filtered, latencies = timed_queries(
        lambda q: [int(k[1:-1]) for k, _ in store.search("bench", q, 10, filter="bucket = 3")], queries[:100]
    )
    assert all(int(i) % 10 == 3 for ids in filtered for i in ids)
    row(
        "fti hnsw, filter bucket = 3 (10%)",
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
    )

    if not args.skip_usearch:
        from usearch.index import Index

        start = time.perf_counter()
        index = Index(
            ndim=args.dim, metric="cos", dtype="f32", connectivity=16, expansion_add=100, expansion_search=64
        )
        index.add(np.arange(args.n), x)
        build = time.perf_counter() - start
        found, latencies = timed_queries(lambda q: index.search(q, 10).keys.tolist(), queries)
        report("usearch (raw, not used by fti)", build, found, truth, latencies, exact_latencies)

    lance: Any = LanceVectorStore(f"lancedb://{root / 'lance'}")
    start = time.perf_counter()
    lance.upsert("bench", keys, x, attributes, metric="cosine", version=0)
    build = time.perf_counter() - start
    found, latencies = timed_queries(
        lambda q: [int(k[1:-1]) for k, _ in lance.search("bench", q, 10)], queries[:100]
    )
    report("fti lancedb (exact scan)", build, found, truth[:100], latencies, exact_latencies[:100])


if __name__ == "__main__":
    main()
