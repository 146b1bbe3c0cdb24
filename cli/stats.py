"""clip-arena stats --votes PATH [--catalog PATH] [--json]"""

from __future__ import annotations

from pathlib import Path

from cli.common import print_json
from core.errors import UserError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("stats", help="the verdict and statistics of a vote store")
    p.add_argument("--votes", required=True, help="SQLite vote store")
    p.add_argument("--catalog", help="catalog Parquet: adds per-category breakdowns and proxy metrics")
    p.add_argument("--bootstrap", type=int, default=200, help="Bradley-Terry bootstrap resamples (3+ methods)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from index.catalog import read_catalog
    from votes.store import VoteStore
    from votes.summary import summarize, verdict

    if not Path(args.votes).is_file():
        raise UserError(f"Vote store {args.votes} does not exist.")
    store = VoteStore(args.votes)
    catalog = read_catalog(args.catalog) if args.catalog else None
    result = summarize(store.votes(), store.rounds(), catalog, bootstrap=args.bootstrap)
    if args.json:
        print_json(result)
        return 0
    print(f"{result['votes']} votes ({result['undone']} undone), {result['rounds']['skipped']} skipped and "
          f"{result['rounds']['auto_skipped']} auto-skipped rounds")
    for pair in result["pairs"]:
        print(verdict(pair))
        print(f"  ties {pair['ties']} ({pair['tie_rate']:.0%}), both bad {pair['both_bad']} "
              f"({pair['both_bad_rate']:.0%}), position bias p = {pair['position_bias_p']:.2g}, "
              f"per query {pair['query_wins_b']}-{pair['query_wins_a']} (p = {pair['query_p_value']:.2g})")
    return 0
