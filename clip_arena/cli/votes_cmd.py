"""clip-arena votes export --votes PATH -o votes.csv | clip-arena votes import votes.csv --votes PATH"""

from __future__ import annotations

import argparse


DESCRIPTION = """\
Move votes between machines: export a vote store to CSV, or import such a CSV into another store
(all or nothing)."""
EXAMPLES = """\
examples:
  clip-arena votes export --votes votes.db -o votes.csv
  clip-arena votes import other_machine.csv --votes votes.db"""

EXPORT_DESCRIPTION = """\
Write every vote of a vote store, undone ones too, to a CSV with the design's vote columns (every
cell quoted; formulas neutralised for spreadsheets)."""
EXPORT_EXAMPLES = """\
examples:
  clip-arena votes export --votes votes.db -o votes.csv"""

IMPORT_DESCRIPTION = """\
Add the votes of an exported CSV to a vote store (created if missing). All or nothing: a bad row
or a vote id the store already has imports nothing."""
IMPORT_EXAMPLES = """\
examples:
  clip-arena votes import other_machine.csv --votes votes.db"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("votes", help="export or import votes as CSV",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="votes_command", required=True, metavar="ACTION")
    exp = sub.add_parser("export", help="write every vote (undone ones too) to CSV",
                         description=EXPORT_DESCRIPTION, epilog=EXPORT_EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    exp.add_argument("--votes", required=True)
    exp.add_argument("-o", "--output", required=True)
    imp = sub.add_parser("import", help="add the votes of a CSV; refuses known vote ids and bad rows",
                         description=IMPORT_DESCRIPTION, epilog=IMPORT_EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("csv")
    imp.add_argument("--votes", required=True)
    imp.add_argument("--allow-other-catalog", action="store_true",
                     help="import votes cast on another catalog (a method with other embeddings) too; "
                          "stats then warns that its verdict pools them")
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.votes.store import VoteStore
    from clip_arena.votes.transfer import export_csv, import_csv

    from pathlib import Path

    from clip_arena.core.errors import UserError

    if args.votes_command == "export" and not Path(args.votes).is_file():
        raise UserError(f"Vote store {args.votes} does not exist.")
    existed = Path(args.votes).exists()
    store = VoteStore(args.votes)
    if args.votes_command == "export":
        n = export_csv(store, args.output)
        print(f"exported {n} vote{'s' if n != 1 else ''} to {args.output}")
        return 0
    try:
        n = import_csv(store, args.csv, allow_other_catalog=args.allow_other_catalog)
    except UserError:
        if not existed:  # nothing was imported: leave no empty store behind
            for suffix in ("", "-wal", "-shm"):
                Path(f"{args.votes}{suffix}").unlink(missing_ok=True)
        raise
    print(f"imported {n} vote{'s' if n != 1 else ''} into {args.votes}")
    return 0
