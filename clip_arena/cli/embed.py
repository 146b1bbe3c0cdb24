"""clip-arena embed --images DIR [--metadata CSV] --method NAME=SPEC ... -o catalog.parquet"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from clip_arena.cli.common import (add_decode_option, add_device_options, add_engine_options, add_fetch_options,
                        note_decode, ray_options_from_args, settings_from_args)
from clip_arena.core.errors import UserError


DESCRIPTION = """\
Embed the images of a folder (searched recursively) and/or of a metadata CSV with one or more
models, each a method named NAME=SPEC, into a catalog Parquet file: one row per image, one
<method>_embedding column per method. An existing catalog is grown: its rows are kept."""
EXAMPLES = """\
examples:
  clip-arena embed --images photos/ --method base=open_clip:ViT-B-32@openai -o catalog.parquet
  clip-arena embed --images photos/ --metadata photos.csv -o catalog.parquet --float16 \\
      --method base=open_clip:ViT-B-32@openai --method finetuned=open_clip:local-dir:runs/ft/model"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("embed", help="embed images into a catalog Parquet file",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", help="folder of images (searched recursively)")
    p.add_argument("--metadata", help="CSV (or `prepare`'s catalog.parquet) with image_uri and optional image_id, "
                                      "caption, split, metadata columns; "
                                      "a relative image_uri is under --images DIR when given, else under the "
                                      "CSV's own folder")
    p.add_argument("--method", action="append", required=True, metavar="NAME=SPEC",
                   help="an embedding method and its model spec; repeat for several")
    p.add_argument("-o", "--output", required=True, help="catalog Parquet file (grown if it exists)")
    p.add_argument("--batch-size", type=int, help="images per model call (default 256 on CUDA, where a "
                   "bigger batch keeps the GPU busy; 64 elsewhere)")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="decoding processes")
    p.add_argument("--float16", action="store_true", help="store vectors as float16 (half the size)")
    p.add_argument("--split", metavar="TRAIN/VAL/TEST",
                   help="draw a train/val/test split in these percentages, e.g. 80/10/10, for rows without one "
                        "(a split already there, from the CSV or the catalog, is kept unless --resplit)")
    p.add_argument("--split-by", metavar="COLUMN", help="with --split: stratify by this column, e.g. category")
    p.add_argument("--group-by", metavar="COLUMN",
                   help="with --split: rows sharing this column's value go to the same split (default: the "
                        "first of group_id, product_id, query_id the catalog has)")
    p.add_argument("--seed", type=int, default=0, help="with --split: seed of the draw (default 0: reruns give the "
                                                       "same split)")
    p.add_argument("--resplit", action="store_true", help="with --split: draw every row's split again")
    p.add_argument("--prune", action="store_true", help="drop catalog rows no longer in the folder or CSV (default: "
                                                        "kept as they were)")
    add_decode_option(p)
    add_device_options(p)
    add_fetch_options(p)
    add_engine_options(p)
    p.set_defaults(run=run)


def parse_methods(values: list[str]) -> dict[str, str]:
    from clip_arena.index.catalog import check_method_name

    methods = {}
    for value in values:
        name, sep, spec = value.partition("=")
        if not sep or not name or not spec:
            raise UserError(f"--method {value!r} must look like NAME=SPEC, e.g. base=open_clip:ViT-B-32@openai.")
        check_method_name(name)  # the catalog's one rule: it names a column and the FAISS files
        if name in methods:
            raise UserError(f"Method {name!r} is given twice.")
        from clip_arena.models.spec import absolute_spec

        methods[name] = absolute_spec(spec)  # the catalog stores it, and Ray's workers load it, from any folder
    return methods


def csv_paths_note(args) -> str:
    folder = Path(args.images) if args.images else Path(args.metadata).parent
    return (f"relative image_uri paths in the metadata CSV are read under {folder}"
            + (" (--images)" if args.images else " (the CSV's folder; --images DIR changes it)"))


def run(args) -> int:
    from clip_arena.index.embed import (build_catalog, items_from_csv, items_from_folder, merge_items, plan_catalog,
                                        stored_methods)
    from clip_arena.index.split import SplitPlan, parse_shares
    from clip_arena.models import get_encoder

    if not args.images and not args.metadata:
        raise UserError("Give --images DIR, --metadata CSV, or both.")
    settings = settings_from_args(args)
    methods = parse_methods(args.method)
    ray_options = ray_options_from_args(args)
    folder_items = items_from_folder(args.images) if args.images else []
    csv_items = items_from_csv(args.metadata, args.images) if args.metadata else []
    items = merge_items(folder_items, csv_items)
    dtype = "float16" if args.float16 else "float32"
    if csv_items and not any("://" in it.source[:16] or os.path.isfile(it.source) for it in csv_items):
        # Said before any model loads: every row would be skipped, and the folder's images added bare.
        raise UserError(f"None of the {len(csv_items):,} image paths in {args.metadata} exists "
                        f"(first: {csv_items[0].source}); {csv_paths_note(args)}.")
    split = None
    if args.split is not None:
        split = SplitPlan(parse_shares(args.split), args.split.strip(), args.seed, args.split_by, args.group_by,
                          args.resplit)
    else:
        given = [o for o, v in (("--split-by", args.split_by), ("--group-by", args.group_by),
                                ("--resplit", args.resplit)) if v]
        if given:
            raise UserError(f"{', '.join(given)} goes with --split TRAIN/VAL/TEST, e.g. --split 80/10/10.")
    # Everything that needs no model, the catalog already there included, is checked before one loads.
    plan = plan_catalog(items, args.output, list(methods), refresh=bool(args.metadata), prune=args.prune, split=split)
    stored = stored_methods(args.output, methods) if not plan.new_items and os.path.exists(args.output) else None
    if stored is not None:  # nothing to embed: the catalog's record of its models is all the writer needs
        report = build_catalog(items, stored, args.output, dtype=dtype, plan=plan)
    elif ray_options is not None:
        from clip_arena.engines.ray_embed import build_catalog_ray

        report = build_catalog_ray(items, methods, args.output, ray_options, dtype=dtype,
                                   batch_size=args.batch_size or 64, limits=settings.limits, device=settings.device,
                                   precision=settings.precision, decode=args.decode, plan=plan)
    else:
        encoders = {name: get_encoder(spec, settings.device, settings.precision) for name, spec in methods.items()}
        note_decode(args.decode, encoders.values())
        from clip_arena.models.device import on_cuda

        batch_size = args.batch_size or (256 if any(on_cuda(e.device) for e in encoders.values()) else 64)
        report = build_catalog(items, encoders, args.output, dtype=dtype, batch_size=batch_size, workers=args.workers,
                               limits=settings.limits, progress=True, decode=args.decode, plan=plan)
    kinds = Counter(kind for _, kind, _ in report.failed)
    refreshed = report.plan.metadata_summary() if report.kept else ""
    n_again = report.plan.reembedded
    again = f", {n_again:,} of them re-embedded as {'its' if n_again == 1 else 'their'} image_uri changed" if n_again else ""
    print(f"{report.path}: {report.kept + report.added:,} images ({report.added:,} new{again}, {report.kept:,} kept"
          + (f"; {refreshed}" if refreshed else "") + f"), {len(report.failed):,} skipped")
    if report.plan.absent:
        print(f"{report.plan.absent:,} catalog rows are no longer in the folder or CSV: "
              + ("dropped (--prune)" if args.prune else "kept as they were (--prune drops them)"))
    if report.plan.split_note:
        print(report.plan.split_note)
    if report.splits:
        other = {s: n for s, n in report.splits.items() if s not in ("train", "val", "test")}
        print("split: " + ", ".join(f"{s} {report.splits.get(s, 0):,}" for s in ("train", "val", "test"))
              + (f"; other values, which finetune and the arena ignore: "
                 + ", ".join(f"{s[:40]!r} {n:,}" for s, n in sorted(other.items())[:5]) if other else ""))
    if report.failed:
        print("skipped by kind: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()), file=sys.stderr)
        for image_id, _, message in report.failed[:10]:
            print(f"  {image_id}: {message}", file=sys.stderr)
        if args.metadata and kinds.get("not_found"):
            print(f"note: {csv_paths_note(args)}", file=sys.stderr)
    return 0
