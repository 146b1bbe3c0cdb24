"""clip-arena score INPUT.csv -o OUTPUT.csv [--model SPEC | --models FILE --model NAME] [--image-root DIR] [--allow-private-urls]"""

from __future__ import annotations

import argparse
import sys

from clip_arena.cli.common import (add_decode_option, add_engine_options, add_fetch_options, add_model_options,
                        note_decode, ray_options_from_args, settings_from_args)
from clip_arena.cli.similarity import add_models_file_option, named_entry
from clip_arena.core.errors import UserError


DESCRIPTION = """\
Score every row of a CSV of images (paths or URLs) and captions: the output CSV has the input's
columns plus cosine, similarity, clip_score and error (a row that failed says why and the others
go on). A calibrated model of a models file adds probability and percentile; a fusion fills only
those two."""
EXAMPLES = """\
examples:
  clip-arena score pairs.csv -o scored.csv
  clip-arena score pairs.csv -o scored.csv --image-column url --caption-column title --resume
  clip-arena score pairs.csv -o scored.csv --models models.yaml --model tuned"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("score", help="score a CSV of image URLs or paths and captions",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="CSV (UTF-8, any of , ; tab |) with an image and a caption column")
    p.add_argument("-o", "--output", required=True, help="scored CSV: input columns + cosine, similarity, clip_score, error")
    p.add_argument("--image-column", help="default: the first of image, image_url, image_uri, url, path, ...")
    p.add_argument("--caption-column", help="default: the first of caption, text, title, description, ...")
    p.add_argument("--image-root", action="append", dest="image_roots", metavar="DIR",
                   help="folder local image paths must stay under (repeatable; default: the CSV's folder)")
    p.add_argument("--no-local-paths", action="store_true", help="refuse local paths (URLs only)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run into the same output")
    p.add_argument("--batch-size", type=int, help="default: the named model's batch_size, else 64")
    p.add_argument("--fetch-workers", type=int, default=16, help="concurrent image fetches")
    add_decode_option(p)
    add_models_file_option(p)
    add_model_options(p)
    add_fetch_options(p)
    add_engine_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from dataclasses import replace
    from pathlib import Path

    from tqdm import tqdm

    from clip_arena.analyzer.batch import BatchOptions, score_csv
    from clip_arena.models.fallback import photo_model_for_cli

    settings = settings_from_args(args)
    roots = None if args.no_local_paths else [str(Path(r).resolve()) for r in
                                              (args.image_roots or [Path(args.input).resolve().parent])]
    named = named_entry(settings, args.model)  # with a models file: (its configuration, NAME)
    entry = named[0].entries[named[1]] if named else None
    if entry is not None and args.engine == "ray" and (entry.is_fusion or entry.calibration):
        # said before Ray is even imported: Ray's actors score raw cosines (engines/ray_score.py)
        raise UserError(f"--engine ray scores raw cosines only and {entry.name} is "
                        f"{'a fusion' if entry.is_fusion else 'calibrated'}; score it without --engine ray.")
    ray_options = ray_options_from_args(args)
    options = BatchOptions(image_column=args.image_column, caption_column=args.caption_column, image_roots=roots,
                           limits=settings.limits, batch_size=args.batch_size or (entry and entry.batch_size) or 64,
                           fetch_workers=args.fetch_workers, resume=args.resume, decode=args.decode)
    handle, spec, device, precision = None, None, settings.device, settings.precision
    if entry is not None and ray_options is not None:
        spec, device, precision = entry.spec, entry.device or device, entry.precision or precision
        encoder = None
    elif entry is not None:
        from clip_arena.models.live import load_one

        handle = load_one(*named, settings.device, settings.precision)
        encoder = handle.fusion if handle.fusion is not None else handle.encoder
        options = replace(options, calibration=handle.calibration)
        note_decode(args.decode, [m.encoder for m in handle.fusion.members] if handle.fusion else [encoder])
    # The same model rule for both engines: the default may fall back to the demo model (said once);
    # Ray's driver checks it on the CPU in fp32, the copy it keeps for the decoding tasks anyway.
    elif ray_options is None:
        encoder, used = photo_model_for_cli(settings)
        note_decode(args.decode, [encoder])
    else:
        encoder, used = photo_model_for_cli(replace(settings, device="cpu", precision="fp32"))
        spec = used.used
    with tqdm(total=100, unit="%", desc="scoring", file=sys.stderr, dynamic_ncols=True,
              bar_format="{l_bar}{bar}| {postfix}") as bar:
        def progress(fraction, text):
            bar.n = round(100 * fraction)
            bar.set_postfix_str(text)

        if ray_options is not None:
            from clip_arena.engines.ray_score import score_csv_ray

            report = score_csv_ray(args.input, args.output, spec, options, ray_options, device, precision, progress)
        else:
            report = score_csv(args.input, args.output, encoder, options, progress)
    scored_by = f"; model {entry.name} ({handle.spec if handle else spec})" if entry is not None else ""
    print(f"{args.output}: {report.summary()}{scored_by}")
    return 0
