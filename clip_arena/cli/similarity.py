"""clip-arena similarity --image PATH_OR_URL --text TEXT [--text TEXT ...] [--model SPEC] [--json]"""

from __future__ import annotations

import argparse

from clip_arena.cli.common import add_fetch_options, add_image_root_option, add_model_options, print_json, settings_from_args


DESCRIPTION = """\
Score one image (a local file under the image roots, or an http(s) URL) against one or more
captions: cosine, similarity = (cosine + 1) / 2, CLIP score and the percentile among generic
captions, one line per caption."""
EXAMPLES = """\
examples:
  clip-arena similarity --image photo.jpg --text "a red shoe" --text "a blue bag"
  clip-arena similarity --image https://example.com/cat.jpg --text "a cat" --json"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("similarity", help="score one image against one or more captions",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", required=True, help="image path or http(s) URL")
    p.add_argument("--text", required=True, action="append", help="a caption; repeat for several")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_image_root_option(p, "none: the file you name is read wherever it is")
    add_model_options(p)
    add_fetch_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.analyzer.policy import ImagePolicy
    from clip_arena.analyzer.similarity import score_image_texts
    from clip_arena.models.fallback import photo_model_for_cli

    settings = settings_from_args(args)
    image = ImagePolicy.for_cli(settings, args.image_roots).load(args.image)
    encoder, used = photo_model_for_cli(settings)
    results = score_image_texts(encoder, image, args.text)
    if args.json:
        keys = ("text", "cosine", "similarity", "clip_score", "percentile")
        out = {"model": used.used, "results": [{k: r.as_dict()[k] for k in keys} for r in results]}
        print_json({**out, "model_notice": used.notice()} if used.notice() else out)
        return 0
    width = max(len(r.text) for r in results)
    print(f"model: {used.used}")
    print(f"{'caption':<{width}}  {'cosine':>7}  {'similarity':>10}  {'clip_score':>10}  {'pctl':>5}")
    for r in results:
        print(f"{r.text:<{width}}  {r.cosine:7.4f}  {r.similarity:10.4f}  {r.clip_score:10.2f}  {r.percentile:5.1f}")
    return 0
