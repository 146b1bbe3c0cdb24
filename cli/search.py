"""clip-arena search --catalog PATH --method NAME --query-id ID [-k 4] [--json]"""

from __future__ import annotations

from cli.common import print_json
from core.errors import UserError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("search", help="nearest catalog images to one catalog image")
    p.add_argument("--catalog", required=True, help="catalog Parquet file")
    p.add_argument("--method", required=True, help="embedding method (column <method>_embedding)")
    p.add_argument("--query-id", required=True, help="image_id of the query image")
    p.add_argument("-k", type=int, default=4, help="number of results (default 4)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from index.catalog import read_catalog
    from index.search import Searcher

    if args.k < 1:
        raise UserError("-k must be at least 1.")
    catalog = read_catalog(args.catalog)
    if args.method not in catalog.methods:
        raise UserError(f"The catalog has no method {args.method!r}; it has {', '.join(catalog.methods)}.")
    results = Searcher.open(catalog, [args.method]).search_id(args.method, args.query_id, args.k)
    if args.json:
        print_json({"method": args.method, "query_id": args.query_id, "results": results})
    else:
        for rank, r in enumerate(results, start=1):
            print(f"{rank:>3}  {r['score']:.4f}  {r['image_id']}")
    return 0
