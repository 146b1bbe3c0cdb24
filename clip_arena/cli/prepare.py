"""clip-arena prepare RAW.csv -o OUT: a raw product catalog -> clean catalog, attributes, split, shards."""

from __future__ import annotations

import argparse
import re
import signal
import sys
from pathlib import Path

from clip_arena.cli.common import add_device_options, add_engine_options, add_fetch_options, print_json
from clip_arena.core.errors import UserError

DESCRIPTION = """\
Prepare a raw catalog CSV (ids, messy titles, image paths or URLs, categories) for fine-tuning, in four
resumable stages:
  clean       titles normalised (HTML, Unicode, SHOUTING, marketing noise, stock codes); images checked
              (unreadable ones reported per row and left out); exact and near-duplicate images found
  attributes  each attribute of --attributes VOCAB.yaml (default: a furniture/apparel vocabulary) by
              zero-shot with --model (--tier offline), or by a vision-language model (--tier vlm);
              "unknown" below --min-confidence; the tier is named in the attributes_tier column
  split       train/val/test (--split), seeded, stratified by the category column, duplicates kept
              together; rows of an earlier OUT/catalog.parquet keep their split (unless --resplit);
              a mini_train subset for smoke runs
  shards      WebDataset shards OUT/shards/<split>/shard-NNNNNN.tar (jpg, txt, json) and
              OUT/manifest.json (counts per split, shard names, sha256 checksums)
Writes OUT/catalog.parquet (one row per usable input row; `clip-arena embed --metadata
OUT/catalog.parquet` reads it, split included) and OUT/report.json (rows left out and why, duplicates).
Columns are found by name when not given: id, title/name, image/image_path/url, category."""
EXAMPLES = """\
examples:
  clip-arena prepare products.csv -o prepared/ --model demo:finetuned
  clip-arena prepare products.csv -o prepared/ --attributes vocab.yaml --split 70/15/15 --resume
  clip-arena prepare products.csv -o prepared/ --stage shards --shard-size 100000000   # one stage alone
  clip-arena prepare products.csv -o prepared/ --tier vlm --vlm-base-url http://localhost:8000/v1"""
STAGE_NAMES = ("clean", "attributes", "split", "shards")


def _size(text: str) -> int:
    """'500MB', '1.5GB', '20000' -> bytes (decimal units, as the default 500 MB is)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?b?)?\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a size in bytes (e.g. 500000000 or 500MB)")
    units = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}
    unit = units[match.group(2) or ""]
    return int(float(match.group(1)) * unit)


def _sigterm_interrupts():
    """SIGTERM stops prepare as Ctrl-C does (the --resume hint said); returns the handler to restore."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (prepare called from a library): leave signals alone
        return None


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("prepare", help="raw catalog CSV -> clean catalog, attributes, split, WebDataset shards",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw_csv", metavar="RAW.csv", help="the raw catalog")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    cols = p.add_argument_group("columns (found by name when not given)")
    cols.add_argument("--id-column", metavar="C", help="unique row id (default: id, image_id, product_id, ...; "
                                                       "none: row-<n>)")
    cols.add_argument("--title-column", metavar="C", help="raw title (default: title, name, ...)")
    cols.add_argument("--image-column", metavar="C", help="image path or URL (default: image, image_path, url, ...)")
    cols.add_argument("--category-column", metavar="C", help="category, for the stratified split (default: category)")
    p.add_argument("--image-root", action="append", dest="image_roots", metavar="DIR",
                   help="folder relative image paths are under, and local paths must stay under (repeatable; "
                        "default: the CSV's folder)")
    p.add_argument("--attributes", metavar="VOCAB.yaml", help="attribute vocabularies {name: [values]} (default: "
                                                             "the bundled furniture/apparel vocabulary)")
    p.add_argument("--tier", choices=["offline", "vlm"], default="offline",
                   help="offline (default): zero-shot with --model; vlm: a vision-language model through the "
                        "OpenAI Batch API file format (key from OPENAI_API_KEY)")
    p.add_argument("--model", help="the catalog's CLIP model for zero-shot attributes and the shards' image size "
                                   "(default: $CLIP_ARENA_MODEL or open_clip:ViT-B-32@openai)")
    p.add_argument("--min-confidence", type=float, default=0.3,
                   help="an attribute value less probable than this is written 'unknown' (default 0.3)")
    p.add_argument("--vlm-model", default="gpt-4o-mini", help="with --tier vlm: the model name (default gpt-4o-mini)")
    p.add_argument("--vlm-base-url", help="with --tier vlm: an OpenAI-compatible server, e.g. http://localhost:8000/v1")
    p.add_argument("--split", default="80/10/10", metavar="TRAIN/VAL/TEST", help="percentages (default 80/10/10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--resplit", action="store_true",
                   help="draw every row's split again (default: rows of an earlier OUT/catalog.parquet keep theirs)")
    p.add_argument("--mini-train", type=int, default=256, metavar="N",
                   help="train rows flagged mini_train for smoke runs (default 256)")
    p.add_argument("--caption-template", default=None, metavar="TEMPLATE",
                   help="the shards' txt, from catalog columns (default: \"{clean_title}, {style} {material} "
                        "{object_type} in {colour}\"; 'unknown' parts are dropped)")
    p.add_argument("--shard-count", type=int, default=1000, metavar="N", help="samples per shard at most (1000)")
    p.add_argument("--shard-size", type=_size, default=500_000_000, metavar="BYTES",
                   help="bytes per shard file at most (default 500MB)")
    p.add_argument("--image-size", type=int, help="shards' square image side (default: the model's input size)")
    p.add_argument("--stage", action="append", choices=STAGE_NAMES,
                   help="run only this stage (repeatable); the stages before it must have finished")
    p.add_argument("--resume", action="store_true",
                   help="keep the finished stages and parts of an earlier run with the same input and options")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    add_device_options(p)
    add_fetch_options(p)
    add_engine_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.cli.common import ray_options_from_args, settings_from_args
    from clip_arena.prepare.pipeline import Options, Prepare
    from clip_arena.prepare.shards import DEFAULT_TEMPLATE

    settings = settings_from_args(args)
    if args.image_size is not None and not 16 <= args.image_size <= 4096:
        raise UserError(f"--image-size {args.image_size} must be between 16 and 4096 pixels.")
    if args.mini_train < 0:
        raise UserError(f"--mini-train {args.mini_train} must be 0 or more.")
    ray_options = ray_options_from_args(args)
    engine = None
    if ray_options is not None:
        from clip_arena.prepare.ray_engine import RayEngine

        engine = RayEngine(ray_options)
    options = Options(
        csv=Path(args.raw_csv), out=Path(args.output),
        columns={"id": args.id_column, "title": args.title_column, "image": args.image_column,
                 "category": args.category_column},
        image_roots=args.image_roots, vocabulary=args.attributes, tier=args.tier, model=settings.model,
        device=settings.device, precision=settings.precision, min_confidence=args.min_confidence,
        split=args.split, seed=args.seed, mini_train=args.mini_train, resplit=args.resplit,
        shard_count=args.shard_count, shard_size=args.shard_size, template=args.caption_template or DEFAULT_TEMPLATE, image_size=args.image_size,
        resume=args.resume, limits=settings.limits, vlm_model=args.vlm_model, vlm_base_url=args.vlm_base_url,
        engine=engine, **({"part_rows": ray_options.part_rows} if ray_options and ray_options.part_rows else {}))
    only = [s for s in STAGE_NAMES if s in (args.stage or [])] or None
    previous = _sigterm_interrupts()
    try:
        summary = Prepare(options).run(only)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (a scheduler, `kill`): the finished parts are on disk
        print(f"interrupted: the work finished so far is kept in {args.output}; run the same command with --resume to "
              "go on from it", file=sys.stderr, flush=True)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if engine is not None:
            engine.close()
    if args.json:
        print_json(summary)
        return 0
    out = summary["output"]
    stages = ", ".join(f"{s} {how}" for s, how in summary["stages"].items())
    print(f"{out}: {stages}")
    if "usable" in summary:
        splits = summary["splits"]
        dupes = summary["duplicates"]
        print(f"{summary['usable']:,} of {summary['input_rows']:,} rows usable ({summary['skipped']:,} left out, "
              f"{dupes:,} duplicate image{'' if dupes == 1 else 's'}); split: "
              + ", ".join(f"{s} {n:,}" for s, n in splits.items()) + f"; attributes: {summary['attributes_tier']} tier")
        if summary["split_kept"]:
            print(f"{summary['split_kept']:,} rows kept the split of the earlier {out}/catalog.parquet "
                  "(--resplit draws every row again)")
    if summary.get("skipped"):
        import json

        skipped = json.loads((Path(out) / "report.json").read_text(encoding="utf-8"))["skipped"]
        for row in skipped[:5]:
            print(f"  row {row['row']} ({str(row['image_id'])[:40]}): {row['reason']}", file=sys.stderr)
        more = f"{len(skipped) - 5:,} more, and " if len(skipped) > 5 else ""
        print(f"rows left out: {more}every reason in {out}/report.json", file=sys.stderr)
    if "shards" in summary:
        print("shards: " + ", ".join(f"{s} {n}" for s, n in summary["shards"].items())
              + f"; manifest: {out}/manifest.json")
    return 0
