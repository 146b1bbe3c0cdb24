"""clip-arena serve [--catalog PATH] [--votes PATH] [--model SPEC] [--host H] [--port P] [--auth USER:PASS]
                  [--users FILE] [--effectiveness-model FILE]

Everything the app needs is checked before it starts (the catalog, the model spec, the users), so
a mistake is one sentence here rather than an error in the browser; then what it serves is printed."""

from __future__ import annotations

import argparse
import os

from clip_arena.cli.common import add_fetch_options, add_model_options, settings_from_args
from clip_arena.core.errors import UserError


DESCRIPTION = """\
Launch the web app: a blind A/B arena over a catalog's methods, its votes kept in a SQLite file,
beside the Similarity, Analyze, Batch CSV, Results and Explore tabs. The catalog, the model and
the users are checked before it starts (one sentence and exit code 2 if one is wrong), then what
it serves is printed."""
EXAMPLES = """\
examples:
  clip-arena serve          # the bundled demo catalog, votes in votes.db, http://127.0.0.1:7860/
  clip-arena serve --catalog catalog.parquet --votes votes.db --users users.txt --admins alice"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="launch the web app",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", help="catalog Parquet for the arena (default: the bundled demo)")
    p.add_argument("--votes", help="SQLite file where votes are stored (default: votes.db)")
    p.add_argument("--image-root", action="append", dest="image_roots", metavar="DIR",
                   help="folder local image paths (Similarity, Analyze and Batch tabs) must stay under "
                        "(repeatable; default: the working folder, none when hosted)")
    p.add_argument("--browser-model", action="append", dest="browser_models", metavar="SPEC",
                   help="a model the browser may choose besides --model (repeatable; default: the demo models)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--auth", help="NAME:PASSWORD required to open the app (the name is the annotator)")
    p.add_argument("--users", dest="users_file", metavar="FILE",
                   help="users file: one name:password per line, passwords in clear or from `clip-arena users hash`")
    p.add_argument("--effectiveness-model", dest="effectiveness_model", metavar="FILE",
                   help="trained effectiveness model (clip-arena effectiveness train) for the Analyze tab")
    p.add_argument("--gold-share", dest="gold_share", type=float, metavar="SHARE",
                   help="share of arena rounds shown again later with the sides swapped, to measure each "
                        "annotator's self-consistency (0 to 0.5, default 0)")
    p.add_argument("--hosted", action="store_true", default=None,
                   help="shared-deployment rules, as on a Space (SPACE_ID): no local paths unless --image-root, "
                        "smaller uploads, sign-in required unless --allow-anonymous")
    p.add_argument("--vote-target", dest="vote_target", metavar="hf:OWNER/NAME|FOLDER",
                   help="keep votes beyond this machine: a dataset repo (hf:OWNER/NAME) or a mounted folder")
    p.add_argument("--push-minutes", dest="push_minutes", type=float, metavar="MIN",
                   help="minutes between pushes to the vote target (default 5 for a repo, at least 1; 1 for a folder, 0: each vote)")
    p.add_argument("--allow-anonymous", dest="allow_anonymous", action="store_true", default=None,
                   help="hosted: let annotators vote under a typed name without signing in")
    p.add_argument("--catalog-hosts", dest="catalog_hosts", metavar="HOST[,HOST]",
                   type=lambda s: tuple(h.strip().lower() for h in s.split(",") if h.strip()),
                   help="hosts of the catalog's image URLs that the server may fetch from although they are on a "
                        "private network (HOST or HOST:PORT); other private addresses stay refused")
    p.add_argument("--admins", metavar="NAME[,NAME]", type=lambda s: tuple(n.strip() for n in s.split(",") if n.strip()),
                   help="who owns the arena when annotators sign in or it is hosted: these signed-in names see "
                        "Results, exports and Explore (on a Space, its owner too); annotators see their own progress")
    p.add_argument("--explore", action=argparse.BooleanOptionalAction, default=None,
                   help="the Explore tab (default: on locally without logins, off when annotators sign in or "
                        "the app is hosted, since it would tell them which side is which)")
    p.add_argument("--plan", metavar="effect=RATE,max_votes=N[,alpha=A]",
                   help="state the evaluation plan before voting (the smallest difference worth acting on, the most "
                        "decisive votes a pair, alpha): stored beside the vote store; the Results tab and stats "
                        "show its stopping rule")
    p.add_argument("--max-votes-per-hour", dest="max_votes_per_hour", type=int, metavar="N",
                   help="most votes one annotator may cast in any hour (default 0: no cap)")
    p.add_argument("--min-display-ms", dest="min_display_ms", type=int, metavar="MS",
                   help="a vote cast sooner after its round appeared is flagged for review (default 400)")
    p.add_argument("--models", dest="models_file", metavar="FILE",
                   help="models file (YAML or TOML) naming the models of the Similarity, Analyze and Batch tabs; "
                        "reloaded without a restart when it changes (default: $CLIP_ARENA_MODELS_FILE)")
    add_model_options(p)
    add_fetch_options(p)
    p.set_defaults(run=run)


def check(settings):
    """The arena over the catalog, once the model spec and the users are known to be usable;
    raises UserError naming the first problem."""
    from clip_arena.webapp import open_strict
    from clip_arena.core.auth import Users
    from clip_arena.models.loaders import demo_inner_spec
    from clip_arena.models.spec import parse_spec

    _port_free(settings.host, settings.port)
    spec = parse_spec(settings.model)
    if spec.backend == "demo":
        demo_inner_spec(spec)
    elif settings.model_named:  # a model you name must be there: its files are checked now, it loads later
        from clip_arena.models.spec import local_paths

        for part in local_paths(spec):
            path = os.path.expanduser(part.path)
            if part.certain and not os.path.exists(path):
                raise UserError(f"--model {settings.model}: its {part.what} {path} does not exist.")
    users = Users.from_settings(settings.auth, settings.users_file)
    return open_strict(settings), users


def start_models(settings):
    """With a models file (or CLIP_ARENA_MODEL__<NAME> variables): its models loaded now (a bad file
    stops the start, said in one sentence) and watched; the default one becomes settings.model."""
    from dataclasses import replace

    from clip_arena.models.live import start, uses_models_config

    if not uses_models_config(settings):
        return settings, None
    _port_free(settings.host, settings.port)  # before loading models, not after
    if settings.model_named or settings.browser_models:
        import sys

        print("note: the models file names the models of the Similarity, Analyze and Batch tabs; --model, "
              "--browser-model, CLIP_ARENA_MODEL and CLIP_ARENA_MODELS are not used", file=sys.stderr, flush=True)
    live = start(settings)
    snap = live.snapshot
    handles = [snap.handles[snap.config.default], *snap.handles.values()]
    spec = next(h.entry.spec for h in handles if h.encoder is not None)  # a fusion's default: its first model
    return replace(settings, model=spec, model_named=True), live


def _port_free(host: str, port: int) -> None:
    """Said before anything loads, in the command's own words (Gradio's names its own variables)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise UserError(f"Port {port} on {host} is in use ({err.strerror}): stop what runs there, or "
                            "choose another with --port.") from None


def describe(settings, arena, users) -> list[str]:
    """What `serve` serves, one line each."""
    from clip_arena.core.hosting import identity, voting_texts

    catalog = arena.searcher.catalog
    uris = [catalog.resolve_uri(u) for u in catalog.table.column("image_uri").to_pylist()]
    local = [u for u in uris if "://" not in u[:16]]
    where = [f"{len(local)} files under {os.path.commonpath([os.path.dirname(u) for u in local])}"] if local else []
    if len(local) < len(uris):
        trusted = f"; private hosts allowed: {', '.join(settings.catalog_hosts)}" if settings.catalog_hosts else \
            "; public hosts only (--catalog-hosts for your own)"
        where.append(f"{len(uris) - len(local)} URLs (fetched by this server{trusted})")
    from clip_arena.analyzer.policy import configured_roots

    allowed = configured_roots(settings)  # the rule the tabs apply: hosted, none unless configured
    roots = ", ".join(allowed) if allowed else "none (local paths off)"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    queries = f"{len(arena.maker.candidates)} arena queries"
    if not arena.maker.has_test_split:  # said now: the fine-tuned model may have trained on these queries
        from clip_arena.index.split import embed_split_command

        has = "no test rows in its split" if "split" in catalog.table.column_names else "no split column"
        queries += (f" drawn from every row, as the catalog has {has}, so a fine-tuned model's training images "
                    f"are among them; to query test images only: `{embed_split_command(catalog)}`")
    return [
        f"catalog: {catalog.path} ({len(catalog)} rows, {queries})",
        f"methods: {', '.join(arena.maker.methods)}",
        f"votes: {os.path.abspath(settings.votes)}",
        f"model: {settings.model}, for the Similarity, Analyze and Batch tabs (the arena and Explore use "
        "the catalog's own models; loading in the background; "
        + ("it must load: the tabs say why if it cannot)" if settings.model_named else
           "the demo model stands in if it cannot load, and the tabs say so)"),
        f"catalog images: {' and '.join(where)} (served one by one, nothing else of their folders)",
        f"image roots for batch CSVs: {roots}",
        voting_texts(identity(settings), len(users or ())).users_line,
        "votes kept in: " + (arena.target.describe() if getattr(arena, "target", None) else "this machine only"),
        f"URL: http://{host}:{settings.port}/" + (f" (listening on {settings.host})" if host != settings.host else ""),
    ]


def _parse_plan(text):
    """--plan's text as a Plan (None without one); a bad one is said in one sentence before anything loads."""
    if text is None:
        return None
    from clip_arena.votes.plan import parse_plan

    try:
        return parse_plan(text)
    except ValueError as e:
        raise UserError(f"--plan {text!r}: {e}.") from None


def run(args) -> int:
    settings = settings_from_args(args)
    if not 0.0 <= settings.gold_share <= 0.5:
        raise UserError("--gold-share must be between 0 and 0.5.")
    if settings.push_minutes is not None and settings.push_minutes < 0:
        raise UserError("--push-minutes must be 0 or more.")
    if settings.max_votes_per_hour < 0 or settings.min_display_ms < 0:
        raise UserError("--max-votes-per-hour and --min-display-ms must be 0 or more.")
    plan = _parse_plan(getattr(args, "plan", None))
    settings, live = start_models(settings)
    arena, users = check(settings)
    lines = describe(settings, arena, users)
    if live is not None:
        named = ("\n  ".join(live.status_lines()) + "\n  (the Similarity, Analyze and Batch tabs offer these "
                 "NAMEs; reloaded when the file changes, on SIGHUP, or by an admin in the Similarity tab)")
        lines = [named if line.startswith("model: ") else line for line in lines]
    if plan is not None:
        from clip_arena.votes.plan import plan_words, write_plan

        maker = getattr(arena, "maker", None)  # its query images: each enters the plan's test once
        queries = len(maker.candidates) if maker is not None else None
        lines.append("plan: " + plan_words(write_plan(settings.votes, plan, len(arena.store.votes()), queries)))
    print("CLIP Arena serves\n  " + "\n  ".join(lines), flush=True)
    from clip_arena import webapp as app

    app.launch(settings, arena)
    return 0
