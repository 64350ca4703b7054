"""Nearest-neighbour search: vislab's EmbeddingIndex vs raw FAISS on the same index object and queries.

Usage: ``python bench/search_speed.py [--n 1000000 --dim 128 --queries 1000 --data random|clustered
--kinds flat,ivfpq,hnsw,lsh --distance cosine]``.

For each kind: the build time (``EmbeddingIndex.build``: normalising, training on a sample, adding), the queries per
second of ``EmbeddingIndex.search`` (best of ``--repeat`` runs after a warm-up, interleaved with raw FAISS's, who
goes first alternating), recall@k against the exact neighbours (FAISS ``IndexFlat`` brute force), ``vislab/faiss`` (QPS of ``EmbeddingIndex.search`` over QPS of
the same FAISS object's ``index.search``; raw FAISS gets its queries normalised beforehand and returns raw scores,
so the ratio is the cost of vislab's checks, normalisation and distance conversion), and the peak RSS so far
(``ru_maxrss``). Both sides must return the same ids. Last line: a summary.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from collections.abc import Callable
from functools import partial

import faiss
import numpy as np


def make_data(n: int, dim: int, queries: int, data: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` base vectors and ``queries`` query vectors, float32: i.i.d. normal (``random``, the hard case), or a
    mixture of ``n / 1000`` Gaussian clusters (``clustered``, like embeddings of images of many classes)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, dim), dtype=np.float32)
    q = rng.standard_normal((queries, dim), dtype=np.float32)
    if data == "clustered":
        centres = rng.standard_normal((max(10, n // 1000), dim), dtype=np.float32) * 2.0
        for i in range(0, n, 1 << 16):
            base[i : i + (1 << 16)] += centres[rng.integers(0, len(centres), len(base[i : i + (1 << 16)]))]
        q += centres[rng.integers(0, len(centres), queries)]
    return base, q


def best_of(repeat: int, ours: Callable[[], object], theirs: Callable[[], object]) -> tuple[float, float]:
    """The best wall time of each of two calls over ``repeat`` interleaved runs, who goes first alternating."""
    best = [float("inf"), float("inf")]
    for r in range(repeat):
        for side in (0, 1) if r % 2 == 0 else (1, 0):
            t0 = time.perf_counter()
            (ours, theirs)[side]()
            best[side] = min(best[side], time.perf_counter() - t0)
    return best[0], best[1]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    from vislab.tasks.embed.vector_index import (
        KINDS,
        EmbeddingIndex,
        exact_neighbours,
        recall_at,
    )

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--data", choices=("random", "clustered"), default="clustered")
    ap.add_argument("--kinds", default="flat,ivfpq,hnsw,lsh", help=f"comma-separated, of {','.join(KINDS)}")
    ap.add_argument("--distance", choices=("cosine", "euclidean"), default="cosine")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        ap.error(f"--kinds: expected names of {', '.join(KINDS)}, got {', '.join(bad)}")

    t0 = time.perf_counter()
    base, queries = make_data(a.n, a.dim, a.queries, a.data, a.seed)
    items = [{"path": f"img{i:07d}.jpg"} for i in range(a.n)]
    t_data = time.perf_counter() - t0
    print(f"search_speed: {a.n:,} x {a.dim} {a.data} float32 vectors, {a.queries} queries, k={a.k}, {a.distance}; "
          f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads; best of {a.repeat} interleaved runs")
    t0 = time.perf_counter()
    _, truth = exact_neighbours(base, queries, a.k, a.distance)
    print(f"data {t_data:.1f} s; exact neighbours (FAISS IndexFlat brute force) {time.perf_counter() - t0:.1f} s; "
          f"peak RSS {peak_rss_gb():.2f} GiB\n")
    print(f"{'kind':<6} {'build s':>8} {'QPS':>9} {'faiss QPS':>10} {'recall@' + str(a.k):>10} {'vislab/faiss':>13} "
          f"{'peak RSS':>9}  params")

    rows = []
    for kind in kinds:
        gc.collect()
        t0 = time.perf_counter()
        index = EmbeddingIndex.build(base, items, kind, a.distance, seed=a.seed)
        build = time.perf_counter() - t0
        raw_index = index.faiss_index
        q_raw = queries.copy()
        if a.distance == "cosine":
            faiss.normalize_L2(q_raw)
        _, ids = index.search(queries, a.k)  # also the warm-up of both (first touches of the index's memory)
        _, raw_ids = raw_index.search(q_raw, a.k)
        best_ours, best_raw = best_of(a.repeat, partial(index.search, queries, a.k), partial(raw_index.search, q_raw, a.k))
        same = "" if np.array_equal(ids, raw_ids) else "  (ids differ from raw FAISS's!)"
        recall = recall_at(ids, truth, a.k)
        qps, raw_qps = a.queries / best_ours, a.queries / best_raw
        ratio = qps / raw_qps
        params = " ".join(f"{k}={v}" for k, v in index.params.items() if k not in ("seed", "train_size"))
        print(f"{kind:<6} {build:8.1f} {qps:9.0f} {raw_qps:10.0f} {recall:10.3f} {ratio:12.2f}x {peak_rss_gb():6.2f} GiB  "
              f"{params or '-'}{same}", flush=True)
        rows.append((kind, qps, recall, ratio))
        del index, raw_index
    summary = ", ".join(f"{kind} {qps:.0f} QPS recall {recall:.3f}" for kind, qps, recall, _ in rows)
    print(f"\nsearch_speed: {a.n}x{a.dim} {a.data}, {a.queries} queries: {summary}; "
          f"vislab/faiss min {min(r[3] for r in rows):.2f}x")


if __name__ == "__main__":
    main()
