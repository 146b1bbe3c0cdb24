"""Server time from a vote to the next round ready, p50/p95, at 10k and 1M catalog rows of random
512-d vectors: Arena.vote() stores the vote and the next round (one commit) and returns the next
round, which it prepared while the annotator looked at the current one. The bench waits a think
time between votes (0.3 s; people take seconds), and times only the vote call.

Baseline in the same run: the straightforward server: exact (flat) indices, and the next round
searched after the vote arrives, one method after the other. Ratios are baseline / ours.

    python bench/bench_arena.py                        # 10k and 1M rows (about 4 minutes)
    python bench/bench_arena.py --sizes 10000 --votes 200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clip_arena.arena.session import Arena  # noqa: E402
from bench.bench_index import unit_vectors  # noqa: E402
from clip_arena.index.catalog import Catalog, numpy_to_fixed_list  # noqa: E402
from clip_arena.index.search import Searcher  # noqa: E402
from clip_arena.index.vector_index import MethodIndex, build_index, default_kind, fingerprint  # noqa: E402
from clip_arena.votes.store import VoteStore  # noqa: E402

METHODS = ("base", "finetuned")


def make_catalog(n: int, dim: int) -> Catalog:
    ids = pa.array([f"img{i}" for i in range(n)])
    cols = {"image_id": ids, "image_uri": ids, "split": pa.array(np.where(np.arange(n) % 10 == 0, "test", "train"))}
    for k, m in enumerate(METHODS):
        cols[f"{m}_embedding"] = numpy_to_fixed_list(unit_vectors(n, dim, seed=k))
    return Catalog(None, pa.table(cols), list(METHODS))


def arena_for(catalog: Catalog, kind: str, db: Path, sequential: bool) -> Arena:
    vectors = {m: catalog.embeddings(m) for m in METHODS}
    indices = {m: MethodIndex(m, build_index(vectors[m], kind), fingerprint(vectors[m][:1000]), vectors[m])
               for m in METHODS}
    arena = Arena(Searcher(catalog, indices, vectors), VoteStore(db), seed=0)
    if sequential:  # the straightforward way: search after the vote, one method after the other
        arena._parallel = False
        arena.prefetch = False
    return arena


def vote_latencies(arena: Arena, votes: int, think_s: float) -> np.ndarray:
    state = arena.start("bench")
    r = arena.next_round(state)
    times = []
    for i in range(votes + 5):  # 5 warm-up votes
        time.sleep(think_s)
        start = time.perf_counter()
        r = arena.vote(state, ("left", "right", "tie")[i % 3], r.round_id)
        times.append(time.perf_counter() - start)
    return np.array(times[5:]) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--votes", type=int, default=300)
    parser.add_argument("--baseline-votes", type=int, default=50)
    parser.add_argument("--think", type=float, default=0.3, help="seconds between votes")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    print(f"{'rows':>9} {'index':>5} {'p50 ms':>7} {'p95 ms':>7} {'baseline p50':>12} {'baseline p95':>12} {'ratio p95':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            catalog = make_catalog(n, args.dim)
            kind = default_kind(n, args.dim)
            ours = vote_latencies(arena_for(catalog, kind, Path(tmp) / f"ours{n}.db", False), args.votes,
                                  args.think)
            base = vote_latencies(arena_for(catalog, "flat", Path(tmp) / f"base{n}.db", True), args.baseline_votes,
                                  args.think)
            p50, p95 = np.percentile(ours, 50), np.percentile(ours, 95)
            b50, b95 = np.percentile(base, 50), np.percentile(base, 95)
            print(f"{n:>9,} {kind:>5} {p50:>7.2f} {p95:>7.2f} {b50:>12.2f} {b95:>12.2f} {b95 / p95:>8.1f}x", flush=True)
            del catalog


if __name__ == "__main__":
    main()
