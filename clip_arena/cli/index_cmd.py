"""clip-arena index --catalog PATH [--rebuild] [--kind flat|hnsw]"""

from __future__ import annotations

import argparse
import time



DESCRIPTION = """\
Build the FAISS index of each method of a catalog and save it beside the catalog; an index still
fresh (same vectors; same kind when --kind is given) is reused unless --rebuild. serve and search
build stale or missing ones themselves: this builds them ahead."""
EXAMPLES = """\
examples:
  clip-arena index --catalog catalog.parquet
  clip-arena index --catalog catalog.parquet --kind hnsw --rebuild"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("index", help="build or refresh the FAISS indices beside a catalog",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", required=True, help="catalog Parquet file")
    p.add_argument("--rebuild", action="store_true", help="rebuild even if the indices are fresh")
    p.add_argument("--kind", choices=["flat", "pq", "hnsw"],
                   help="flat (exact), pq (fast-scan + exact re-rank) or hnsw; default: flat up to 50k rows, else pq")
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.index.catalog import read_catalog
    from clip_arena.index.vector_index import index_paths, load_or_build

    catalog = read_catalog(args.catalog)
    for method in catalog.methods:
        start = time.perf_counter()
        index, action = load_or_build(catalog, method, rebuild=args.rebuild, kind=args.kind)
        print(f"{method}: {action} {index.kind} index of {index.index.ntotal:,} vectors "
              f"in {time.perf_counter() - start:.1f} s -> {index_paths(catalog.path, method)[0]}")
    return 0
