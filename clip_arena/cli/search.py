"""clip-arena search --catalog PATH --method NAME (--query-id ID | --text TEXT | --image PATH_OR_URL)
[-k 4] [--json]"""

from __future__ import annotations

import argparse

from clip_arena.cli.common import add_device_options, add_fetch_options, add_image_root_option, print_json, settings_from_args
from clip_arena.core.errors import UserError


DESCRIPTION = """\
The k nearest catalog images, by one method's vectors, to a catalog image (--query-id, itself left
out), a text or an image (both embedded by the model that made the method's vectors); prints
rank, score (cosine) and image_id."""
EXAMPLES = """\
examples:
  clip-arena search --catalog catalog.parquet --method base --query-id shoes/2.jpg -k 8
  clip-arena search --catalog catalog.parquet --method finetuned --text "a red shoe" --json"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("search", help="nearest catalog images to a catalog image, a text or an image",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", required=True, help="catalog Parquet file")
    p.add_argument("--method", required=True, help="embedding method (column <method>_embedding)")
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--query-id", help="image_id of a catalog image (itself left out of the results)")
    query.add_argument("--text", help="a text, embedded by the method's model")
    query.add_argument("--image", help="an image path or URL, embedded by the method's model")
    p.add_argument("-k", type=int, default=4, help="number of results (default 4)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_image_root_option(p, "none: the file you name is read wherever it is")
    add_device_options(p)
    add_fetch_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.index.catalog import read_catalog
    from clip_arena.index.search import Searcher

    if args.k < 1:
        raise UserError("-k must be at least 1.")
    catalog = read_catalog(args.catalog)
    if args.method not in catalog.methods:
        raise UserError(f"The catalog has no method {args.method!r}; it has {', '.join(catalog.methods)}.")
    searcher = Searcher.open(catalog, [args.method])
    if args.query_id is not None:
        results, query = searcher.search_id(args.method, args.query_id, args.k), {"query_id": args.query_id}
    else:
        from clip_arena.analyzer.policy import ImagePolicy
        from clip_arena.index.explore import search_image, search_text

        settings = settings_from_args(args)
        if args.text is not None:
            hits, query = search_text(searcher, args.method, args.text, args.k, settings.device,
                                      settings.precision), {"query_text": args.text}
        else:
            image = ImagePolicy.for_cli(settings, args.image_roots).load(args.image)
            hits, query = search_image(searcher, args.method, image, args.k, settings.device,
                                       settings.precision), {"query_image": args.image}
        results = [h.as_dict() for h in hits]
    if args.json:
        print_json({"method": args.method, **query, "results": results})
    else:
        for rank, r in enumerate(results, start=1):
            print(f"{rank:>3}  {r['score']:.4f}  {r['image_id']}")
    return 0
