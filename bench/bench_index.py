"""Index build time, single-query latency p50/p95 and recall@4 against exact search.

Random unit vectors (the structureless worst case for approximate search), 512-d by default.
The baseline is exact IndexFlatIP measured in the same run; ratios are baseline / ours.

    python bench/bench_index.py                  # 10k, 100k, 1M (about 6 minutes on 2 cores)
    python bench/bench_index.py --sizes 10000 100000 --queries 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clip_arena.index.vector_index import MethodIndex, build_index, default_kind  # noqa: E402


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # in blocks: no float64 copy of the whole set
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def latencies(index: MethodIndex, vectors: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    times, results = [], []
    for row in rows:
        start = time.perf_counter()
        _, found = index.search(vectors[row], k, exclude_rows=[row])
        times.append(time.perf_counter() - start)
        results.append(found[0])
    return np.array(times) * 1e3, np.array(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="FAISS threads (1: one query per core)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    k = 4
    print(f"{'rows':>9} {'kind':>5} {'build s':>8} {'p50 ms':>7} {'p95 ms':>7} {'recall@4':>8} "
          f"{'exact p95':>9} {'speed-up p95':>12}")
    for n in args.sizes:
        vectors = unit_vectors(n, args.dim)
        rows = np.random.default_rng(1).choice(n, min(args.queries, n), replace=False)
        exact = MethodIndex("exact", build_index(vectors, "flat"), "", vectors)
        exact_ms, truth = latencies(exact, vectors, rows, k)
        kind = default_kind(n, args.dim)
        start = time.perf_counter()
        ours = MethodIndex("ours", build_index(vectors, kind), "", vectors)
        build_s = time.perf_counter() - start
        ours_ms, found = latencies(ours, vectors, rows, k)
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth)])
        p50, p95, exact_p95 = np.percentile(ours_ms, 50), np.percentile(ours_ms, 95), np.percentile(exact_ms, 95)
        print(f"{n:>9,} {kind:>5} {build_s:>8.1f} {p50:>7.2f} {p95:>7.2f} {recall:>8.3f} "
              f"{exact_p95:>9.2f} {exact_p95 / p95:>11.1f}x", flush=True)
        del vectors, exact, ours


if __name__ == "__main__":
    main()
