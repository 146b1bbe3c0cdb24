"""clip-arena stats --votes PATH [--catalog PATH] [--exclude-annotator NAME ...] [--min-effect RATE]
[--plan effect=0.6,max_votes=400,alpha=0.05] [--json]"""

from __future__ import annotations

import argparse
from pathlib import Path

from clip_arena.cli.common import print_json
from clip_arena.core.errors import UserError


def _win_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value > 1 and value < 100:
        value /= 100  # 55 means 55%
    if not 0 < value < 1 or abs(value - 0.5) < 1e-9:
        raise argparse.ArgumentTypeError("give a win rate other than 50%, such as 0.55 or 55")
    return value


def _plan(text: str):
    from clip_arena.votes.plan import parse_plan

    if text.strip().lower() == "none":
        return "none"
    try:
        return parse_plan(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


DESCRIPTION = """\
The verdict of a vote store: for each pair of methods a plain sentence, then win rates with 95%
intervals (clustered by query and per vote), ties, position bias and the votes still needed, and a
Bradley-Terry leaderboard. With an evaluation plan (--plan, or the one `serve --plan` stored
beside the vote store) each pair also gets the plan's stopping rule. --json prints all of it and more (annotators' agreement, and with
--catalog breakdowns by its metadata columns and proxy metrics) as one object."""
EXAMPLES = """\
examples:
  clip-arena stats --votes votes.db
  clip-arena stats --votes votes.db --catalog catalog.parquet --exclude-annotator bob --json
  clip-arena stats --votes votes.db --plan effect=0.6,max_votes=400,alpha=0.05"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("stats", help="the verdict and statistics of a vote store",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--votes", required=True, help="SQLite vote store")
    p.add_argument("--catalog", help="the arena's catalog Parquet: only the votes cast on it count (votes of "
                                     "another catalog are left out and said); --json then adds each pair's breakdowns by its "
                                     "metadata columns and a same-category precision@k per method (the text "
                                     "output shows neither)")
    p.add_argument("--bootstrap", type=int, default=200, help="Bradley-Terry bootstrap resamples over queries")
    p.add_argument("--exclude-annotator", action="append", default=[], metavar="NAME",
                   help="leave this annotator's votes out of the verdict (repeatable)")
    p.add_argument("--min-effect", type=_win_rate, metavar="RATE",
                   help="plan the votes still needed for this win rate (0.55 or 55 = a 55/45 difference); "
                        "default: the observed one")
    p.add_argument("--plan", type=_plan, metavar="effect=RATE,max_votes=N[,alpha=A]",
                   help="the evaluation plan: the smallest difference worth acting on (0.6 or 60/40), the most "
                        "decisive votes to spend on a pair, alpha for the whole table (default 0.05); default: "
                        "the plan stored beside the vote store by serve --plan, if any; 'none' ignores it")
    p.add_argument("--include-non-blind", action="store_true",
                   help="count votes cast after the methods were revealed (left out by default)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.index.catalog import read_catalog
    from clip_arena.votes.store import VoteStore
    from clip_arena.votes.fingerprints import of_catalog
    from clip_arena.votes.results_view import flagged_line, interval_text, ranks
    from clip_arena.votes.summary import count, model_lines, numbers, summarize

    if not Path(args.votes).is_file():
        raise UserError(f"Vote store {args.votes} does not exist.")
    if args.bootstrap < 0:
        raise UserError("--bootstrap must be 0 or more.")
    store = VoteStore(args.votes)
    catalog = read_catalog(args.catalog) if args.catalog else None
    votes = store.votes()
    unknown = sorted(set(args.exclude_annotator) - {v["annotator"] for v in votes})
    if unknown:
        raise UserError(f"No votes from annotator {', '.join(map(repr, unknown))} in {args.votes}.")
    from clip_arena.votes.plan import plan_words, read_plan

    plan = read_plan(args.votes) if args.plan is None else (None if args.plan == "none" else args.plan)
    result = summarize(votes, store.rounds(), catalog, bootstrap=args.bootstrap, plan=plan,
                       exclude_annotators=args.exclude_annotator, min_effect=args.min_effect,
                       include_non_blind=args.include_non_blind, flags=store.flags(),
                       fingerprint=of_catalog(catalog) if catalog is not None else None)
    if args.json:
        print_json(result)
        return 0
    for key in ("catalog_warning", "catalog_note", "self_vote_note"):
        if result.get(key):
            print(result[key])  # first: it says what the verdict below is about
    if plan is not None:
        print(f"Plan: {plan_words(plan)}.")
    several = len(result["pairs"]) > 1
    for pair in result["pairs"]:
        print(f"{pair['method_a']} vs {pair['method_b']}: {pair['plain']}" if several else pair["plain"])
    for pair in result["pairs"]:
        print(f"\n{pair['method_a']} vs {pair['method_b']}:")
        print("  " + numbers(pair).replace("\n", "\n  "))
    if result.get("bradley_terry"):
        print(f"\nLeaderboard (Bradley-Terry, {result['bradley_terry_model']['interval_note']}):")
        for rank, r in zip(ranks(result["bradley_terry"]), result["bradley_terry"]):
            ci = f" ({interval_text(r)})" if r["ci"] or r.get("confounded_with") else ""
            print(f"  {'?' if r.get('confounded_with') else rank}. {r['method']} {r['strength']:.3f}{ci}, "
                  f"{count(r['votes'], 'vote')}")
    if result.get("bradley_terry_warning"):
        print(result["bradley_terry_warning"])
    for line in model_lines(result):  # side term, ties, annotators' alpha, each annotator left out
        print(line)
    print(f"\n{count(result['votes'], 'vote')} in the verdict ({result['undone']} undone, "
          f"{result['non_blind']['votes']} cast "
          f"after a reveal{'' if result['non_blind']['counted'] else ' left out'}, {result['excluded_votes']} of "
          f"excluded annotators), {result['rounds']['skipped']} skipped and {result['rounds']['auto_skipped']} "
          f"auto-skipped rounds")
    if result["flagged"]["votes"]:
        print(flagged_line(result["flagged"]))
    return 0
