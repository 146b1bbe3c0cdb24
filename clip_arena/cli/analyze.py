"""clip-arena analyze --image PATH_OR_URL --text TEXT [--model SPEC] [--effectiveness-model FILE] [--json]"""

from __future__ import annotations

import argparse
import json
import sys

from clip_arena.cli.common import add_fetch_options, add_image_root_option, add_model_options, print_json, settings_from_args
from clip_arena.core.errors import UserError


DESCRIPTION = """\
Analyse a creative (an image, its text, or both): image-text alignment, labels, caption,
objects, text in the image, sentiment, entities, image and text properties, and with
--effectiveness-model a predicted target. Each section says ok, degraded or unavailable, and why."""
EXAMPLES = """\
examples:
  clip-arena analyze --image ad.jpg --text "Summer sale: 30% off, shop now"
  clip-arena analyze --image ad.jpg --section ocr --section image_properties --json"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("analyze", help="full content analysis of an image and its text",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", help="image path or http(s) URL")
    p.add_argument("--text", default="", help="the creative's text (caption, ad copy, listing)")
    p.add_argument("--section", action="append", dest="sections", metavar="NAME",
                   help="only this section (repeatable); default: all")
    p.add_argument("--effectiveness-model", dest="effectiveness_model", metavar="FILE",
                   help="trained effectiveness model, for a predicted target")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_image_root_option(p, "none: the file you name is read wherever it is")
    add_model_options(p)
    add_fetch_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.analyzer.content.report import SECTION_NAMES
    from clip_arena.analyzer.content.service import run_analysis
    from clip_arena.analyzer.policy import ImagePolicy

    settings = settings_from_args(args)
    if not args.image and not args.text.strip():
        raise UserError("Give an image (--image), a text (--text) or both.")
    unknown = sorted(set(args.sections or []) - set(SECTION_NAMES))
    if unknown:
        raise UserError(f"Unknown section {', '.join(unknown)}; the sections are: {', '.join(SECTION_NAMES)}.")
    if settings.model_named:
        from clip_arena.models.fallback import photo_model

        photo_model(settings)  # a model the user named loads, or the command fails saying why (exit 2)
    report = run_analysis(args.image or None, args.text, settings, only=set(args.sections) if args.sections else None,
                          policy=ImagePolicy.for_cli(settings, args.image_roots))
    if report.get("model_notice"):
        print(f"note: {report['model_notice']}", file=sys.stderr)
    if args.json:
        print_json(report)
        return 0
    print(f"model: {report['model']}")
    for name, sec in report["sections"].items():
        head = f"[{sec['status']}] {name}" + (f" ({sec['backend']})" if sec["backend"] else "")
        print(head)
        if sec["reason"]:
            print(f"    reason: {sec['reason']}")
        for key, value in sec.items():
            if key not in ("status", "backend", "reason"):
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                print(f"    {key}: {text if len(text) <= 200 else text[:197] + '...'}")
    return 0
