"""clip-arena similarity --image PATH_OR_URL --text TEXT [--text TEXT ...] [--model SPEC | --models FILE --model NAME] [--json]"""

from __future__ import annotations

import argparse

from clip_arena.cli.common import add_fetch_options, add_image_root_option, add_model_options, print_json, settings_from_args
from clip_arena.core.errors import UserError


DESCRIPTION = """\
Score one image (a local file under the image roots, or an http(s) URL) against one or more
captions: cosine, similarity = (cosine + 1) / 2, CLIP score and the percentile among generic
captions, one line per caption."""
EXAMPLES = """\
examples:
  clip-arena similarity --image photo.jpg --text "a red shoe" --text "a blue bag"
  clip-arena similarity --image photo.jpg --text "a red shoe" --models models.yaml --model tuned
  clip-arena similarity --image https://example.com/cat.jpg --text "a cat" --json"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("similarity", help="score one image against one or more captions",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", required=True, help="image path or http(s) URL")
    p.add_argument("--text", required=True, action="append", help="a caption; repeat for several")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_image_root_option(p, "none: the file you name is read wherever it is")
    add_models_file_option(p)
    add_model_options(p)
    add_fetch_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from clip_arena.analyzer.policy import ImagePolicy
    from clip_arena.analyzer.similarity import score_image_texts
    from clip_arena.models.fallback import photo_model_for_cli

    settings = settings_from_args(args)
    image = ImagePolicy.for_cli(settings, args.image_roots).load(args.image)
    handle = named_model(settings, args.model)
    if handle is not None:
        from clip_arena.analyzer.similarity_view import score_named

        results, model, notice = score_named(handle, image, args.text), handle.spec, None
    else:
        encoder, used = photo_model_for_cli(settings)
        results, model, notice = score_image_texts(encoder, image, args.text), used.used, used.notice()
    if args.json:
        keys = ("text", "cosine", "similarity", "clip_score", "percentile", "probability")
        out = {"model": model, **({"name": handle.name} if handle is not None else {}),
               "results": [{k: v for k, v in r.as_dict().items() if k in keys and (k != "probability" or v is not None)}
                           for r in results]}
        print_json({**out, "model_notice": notice} if notice else out)
        return 0
    if handle is not None:
        return _print_named(handle, results)
    width = max(len(r.text) for r in results)
    print(f"model: {model}")
    print(f"{'caption':<{width}}  {'cosine':>7}  {'similarity':>10}  {'clip_score':>10}  {'pctl':>5}")
    for r in results:
        print(f"{r.text:<{width}}  {r.cosine:7.4f}  {r.similarity:10.4f}  {r.clip_score:10.2f}  {r.percentile:5.1f}")
    return 0


def add_models_file_option(p) -> None:
    """--models FILE, as `similarity` and `score` take it (with add_model_options' --model)."""
    p.add_argument("--models", dest="models_file", metavar="FILE",
                   help="models file: --model then names one of its models (a fusion too; default: the file's "
                        "default); default: $CLIP_ARENA_MODELS_FILE")


def named_entry(settings, model: str | None):
    """With a models file: (its configuration, the NAME --model gives, or the file's default when
    --model is not given), nothing loaded yet; None without a file, or for a --model that is a spec
    rather than a NAME (the command line may load any spec)."""
    if not settings.models_file:
        return None
    from clip_arena.models.config import load

    cfg = load(settings.models_file)
    if model and model not in cfg.entries:
        from clip_arena.models.spec import parse_spec

        if ":" in model:
            parse_spec(model)  # a spec: loaded as ever (an unknown one is said here)
            return None
        raise UserError(f"There is no model {model[:80]!r} in {cfg.source}; it names {', '.join(cfg.entries)}.")
    return cfg, model or cfg.default


def named_model(settings, model: str | None):
    """named_entry's model, loaded with its calibration or fusion (a models.live.Handle), or None."""
    named = named_entry(settings, model)
    if named is None:
        return None
    from clip_arena.models.live import load_one

    return load_one(*named, settings.device, settings.precision)


def _print_named(handle, results) -> int:
    import math

    print(f"model: {handle.name} ({handle.spec})")
    width = max(len(r.text) for r in results)
    calibrated = any(getattr(r, "probability", None) is not None for r in results)
    print(f"{'caption':<{width}}  {'cosine':>7}  {'pctl':>5}" + ("  probability" if calibrated else ""))
    for r in results:
        cosine = f"{r.cosine:7.4f}" if r.cosine is not None and math.isfinite(r.cosine) else f"{'-':>7}"
        tail = f"  {r.probability:11.4f}" if calibrated and r.probability is not None else ""
        print(f"{r.text:<{width}}  {cosine}  {r.percentile:5.1f}{tail}")
    return 0
