"""clip-arena analyze --image PATH_OR_URL --text TEXT [--model SPEC] [--effectiveness-model FILE] [--json]
clip-arena analyze --video PATH_OR_URL [--text TEXT] [--brand NAME] [--frames DIR] [--json]"""

from __future__ import annotations

import argparse
import json
import sys

from clip_arena.cli.common import add_fetch_options, add_image_root_option, add_model_options, print_json, settings_from_args
from clip_arena.core.errors import UserError


DESCRIPTION = """\
Analyse a creative (an image, its text, or both): image-text alignment, labels, caption,
objects, text in the image, sentiment, entities, image and text properties, and with
--effectiveness-model a predicted target. Each section says ok, degraded or unavailable, and why.
A video (--video: mp4, mov, webm, mkv, animated GIF or WebP) gets the same sections on one keyframe
per shot, plus its shots and pace, the text on screen with the time it first appears, the text's
alignment over time, loudness (LUFS) and an ABCD-style rubric, each check with its evidence."""
EXAMPLES = """\
examples:
  clip-arena analyze --image ad.jpg --text "Summer sale: 30% off, shop now"
  clip-arena analyze --image ad.jpg --section ocr --section image_properties --json
  clip-arena analyze --video ad.mp4 --text "Summer sale: 30% off, shop now" --brand Acme --frames keyframes/"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("analyze", help="full content analysis of an image and its text",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", help="image path or http(s) URL")
    p.add_argument("--video", help="video path or http(s) URL (mp4, mov, webm, mkv, animated GIF or WebP)")
    p.add_argument("--brand", help="with --video: the brand name to look for on screen (the rubric's Branding check)")
    p.add_argument("--frames", metavar="DIR", help="with --video: save the keyframes and a contact sheet in DIR")
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
    if args.video:
        return run_video(args, settings)
    if args.brand or args.frames:
        raise UserError("--brand and --frames apply to a video (--video PATH).")
    if not args.image and not args.text.strip():
        raise UserError("Give an image (--image), a text (--text) or both; or a video (--video).")
    unknown = sorted(set(args.sections or []) - set(SECTION_NAMES))
    if unknown:
        raise UserError(f"Unknown section {', '.join(unknown)}; the sections are: {', '.join(SECTION_NAMES)}.")
    _named_model_loads(settings)
    report = run_analysis(args.image or None, args.text, settings, only=set(args.sections) if args.sections else None,
                          policy=ImagePolicy.for_cli(settings, args.image_roots))
    if _noted_or_json(report, args):
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


def _named_model_loads(settings) -> None:
    if settings.model_named:
        from clip_arena.models.fallback import photo_model

        photo_model(settings)  # a model the user named loads, or the command fails saying why (exit 2)


def _noted_or_json(report: dict, args) -> bool:
    """The model notice on stderr; with --json the whole report, and True: nothing more to print."""
    if report.get("model_notice"):
        print(f"note: {report['model_notice']}", file=sys.stderr)
    if args.json:
        print_json(report)
    return bool(args.json)


def run_video(args, settings) -> int:
    from clip_arena.analyzer.policy import ImagePolicy
    from clip_arena.analyzer.video.report import analyze_video

    if args.image:
        raise UserError("Give an image (--image) or a video (--video), not both.")
    if args.sections:
        raise UserError("--section applies to images; a video gets every section.")
    _named_model_loads(settings)
    report = analyze_video(args.video, args.text, settings, brand=args.brand, frames_dir=args.frames,
                           policy=ImagePolicy.for_cli(settings, args.image_roots))
    if _noted_or_json(report, args):
        return 0
    print_video(report)
    return 0


def _clip(text: str, width: int = 200) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def print_video(report: dict) -> None:
    """The report as a person reads it: the video, its timeline, the rubric, then the sections."""
    v = report["video"]
    size = f"{v['width']}x{v['height']}"
    fps = f"{v['fps']:.3g} fps" if v["fps"] else "fps unknown"
    print(f"model: {report['model']}")
    print(f"video: {v['duration_s']:.1f} s, {size}, {fps}, {v['codec']}, "
          + ("with audio" if v["has_audio"] else "no audio"))
    average = f", {v['average_shot_s']:.1f} s a shot on average" if v["average_shot_s"] else ""
    print(f"shots: {len(v['shots'])} ({v['cuts_per_second']:.2f} cuts per second{average})")
    for shot in v["shots"][:20]:
        print(f"    {shot['index'] + 1:>3}  {shot['start_s']:6.2f} s - {shot['end_s']:6.2f} s")
    if len(v["shots"]) > 20:
        print(f"    ... and {len(v['shots']) - 20} more")
    print("text on screen:" + ("" if v["text_seen"] else " none read"))
    for seen in v["text_seen"][:20]:
        print(f"    {seen['first_s']:6.1f} s  {_clip(seen['text'], 100)}")
    lufs = v["loudness_lufs"]
    print("loudness: " + (f"{lufs:.1f} LUFS integrated, {100 * v['silence_share']:.0f}% silent, "
                          f"{100 * (v['clipping_share'] or 0):.2f}% of samples clipped"
                          if lufs is not None else report["sections"]["audio"]["reason"] or "none"))
    if v["alignment"]:
        best = max(v["alignment"], key=lambda p: p["cosine"])
        mean = sum(p["cosine"] for p in v["alignment"]) / len(v["alignment"])
        print(f"text alignment over time: mean cosine {mean:.3f}, best {best['cosine']:.3f} at {best['time_s']:.1f} s "
              f"({len(v['alignment'])} frames, {v['sample_fps']:g} a second)")
    elif v.get("alignment_reason"):
        print(f"text alignment over time: {v['alignment_reason']}")
    print("rubric:")
    for check in v["rubric"]:
        mark = {True: "pass", False: "FAIL", None: "n/a "}[check["passed"]]
        print(f"    [{mark}] {check['name']}: {check['evidence']}")
    if v["contact_sheet"]:
        print(f"keyframes: {', '.join(k['path'] for k in v['keyframes'])}")
        print(f"contact sheet: {v['contact_sheet']}")
    print("sections (image sections on the keyframes):")
    for name, sec in report["sections"].items():
        head = f"[{sec['status']}] {name}" + (f" ({sec['backend']})" if sec["backend"] else "")
        print(head)
        if sec["reason"]:
            print(f"    reason: {_clip(sec['reason'])}")
        for kf in sec.get("keyframes", [])[:12]:
            values = {k: val for k, val in kf.items() if k not in ("time_s", "shot", "status")}
            print(f"    {kf['time_s']:6.1f} s: {_clip(json.dumps(values, ensure_ascii=False), 160)}")
        for key, value in sec.items():
            if key not in ("status", "backend", "reason", "keyframes"):
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                print(f"    {key}: {_clip(text)}")
