"""clip-arena serve [--catalog PATH] [--votes PATH] [--model SPEC] [--host H] [--port P] [--auth USER:PASS]
                  [--effectiveness-model FILE]"""

from __future__ import annotations

from cli.common import add_fetch_options, add_model_options, settings_from_args
from core.errors import UserError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="launch the web app")
    p.add_argument("--catalog", help="catalog Parquet for the arena (default: the bundled demo)")
    p.add_argument("--votes", help="SQLite file where votes are stored (default: votes.db)")
    p.add_argument("--image-root", action="append", dest="image_roots", metavar="DIR",
                   help="folder local paths in batch CSVs must stay under (repeatable)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--auth", help="USER:PASS required to open the app")
    p.add_argument("--effectiveness-model", dest="effectiveness_model", metavar="FILE",
                   help="trained effectiveness model (clip-arena effectiveness train) for the Analyze tab")
    p.add_argument("--gold-share", dest="gold_share", type=float, metavar="SHARE",
                   help="share of arena rounds shown again later with the sides swapped, to measure each "
                        "annotator's self-consistency (0 to 0.5, default 0)")
    add_model_options(p)
    add_fetch_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    settings = settings_from_args(args)
    if not 0.0 <= settings.gold_share <= 0.5:
        raise UserError("--gold-share must be between 0 and 0.5.")
    if settings.auth and ":" not in settings.auth:
        raise UserError("--auth must be USER:PASS.")
    import app

    app.launch(settings)
    return 0
