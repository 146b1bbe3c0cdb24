"""clip-arena effectiveness train --csv CREATIVES.csv --target COLUMN -o model.joblib [...]"""

from __future__ import annotations

import argparse

from clip_arena.cli.common import add_model_options, print_json, settings_from_args


DESCRIPTION = """\
Predict a creative's CTR (or any numeric target) from its image, text and tabular columns: train
a model on a CSV of creatives, scored by grouped cross-validation against a dummy baseline."""
EXAMPLES = """\
examples:
  clip-arena effectiveness train --csv creatives.csv --target ctr -o ctr.joblib"""

TRAIN_DESCRIPTION = """\
Train and cross-validate a model that predicts --target from each creative's CLIP embeddings,
content analysis and tabular columns; prints its error against a dummy baseline and without each
feature group, and saves it (with a .json report beside it) for serve and analyze."""
TRAIN_EXAMPLES = """\
examples:
  clip-arena effectiveness train --csv creatives.csv --target ctr -o ctr.joblib
  clip-arena effectiveness train --csv creatives.csv --target ctr --group-column campaign \\
      --tabular channel spend --ocr -o ctr.joblib"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("effectiveness", help="predict a creative's CTR (or any target) from its content",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = sub.add_parser("train", help="train and cross-validate on a CSV of creatives",
                       description=TRAIN_DESCRIPTION, epilog=TRAIN_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--csv", required=True, help="one row per creative: image, text, tabular columns, target")
    t.add_argument("--target", required=True, help="the column to predict, e.g. ctr")
    t.add_argument("--image-column", default="image", help="image or video paths (relative to the CSV) "
                                                           "or URLs; a video gives pace, first-brand time, "
                                                           "alignment over time and loudness features; '' for none "
                                                           "(default: image)")
    t.add_argument("--text-column", default="text", help="the creative's text; '' for none (default: text)")
    t.add_argument("--group-column", help="rows sharing a value stay in one fold, e.g. campaign "
                                          "(default: the image column)")
    t.add_argument("--brand-column", help="each creative's brand name: a video's feature 'when the brand is first "
                                          "on screen' (read by OCR)")
    t.add_argument("--tabular", nargs="*", metavar="COLUMN",
                   help="tabular feature columns (default: every other column; none if given empty)")
    t.add_argument("--ocr", action="store_true", help="add text-in-image features (about 1 s per image on a CPU)")
    t.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("-o", "--output", required=True, help="where to save the model (.joblib; a .json report beside it)")
    t.add_argument("--json", action="store_true", help="print the cross-validation report as one JSON object")
    add_model_options(t)
    t.set_defaults(run=run_train)


def run_train(args) -> int:
    from tqdm import tqdm

    from clip_arena.effectiveness.train import TrainOptions, train

    from clip_arena.models.fallback import photo_model_for_cli

    settings = settings_from_args(args)
    # The model rule of every command: the default may fall back to the demo model (said on stderr),
    # a named one must load; the trained file records the model its features came from.
    model = photo_model_for_cli(settings)[1].used
    opts = TrainOptions(target=args.target, image_column=args.image_column or None,
                        text_column=args.text_column or None, group_column=args.group_column,
                        brand_column=args.brand_column, tabular=args.tabular, model=model, ocr=args.ocr, folds=args.folds, seed=args.seed)
    with tqdm(unit="step", disable=args.json, desc="features") as bar:
        def progress(done: int, total: int, what: str) -> None:
            if bar.total != total:
                bar.reset(total=total)
            bar.set_description(what, refresh=False)
            bar.update(done - bar.n)

        trained = train(args.csv, args.output, opts, settings, progress)
    report = trained.report
    if args.json:
        print_json({"model_file": args.output, **report})
        return 0
    print(format_report(report, args.output))
    return 0


def format_report(report: dict, path: str) -> str:
    m, d = report["model"], report["dummy"]
    lines = [
        f"target {report['target']}: {report['rows']} rows, {report['groups']} groups by "
        f"{report['group_column'] or 'row'}, {report['folds']}-fold grouped cross-validation",
        f"  model  MAE {m['mae_mean']:.6g} ± {m['mae_std']:.2g}   R² {m['r2_mean']:.3f} ± {m['r2_std']:.2f}",
        f"  dummy  MAE {d['mae_mean']:.6g} ± {d['mae_std']:.2g}   R² {d['r2_mean']:.3f} ± {d['r2_std']:.2f}",
        f"  {'beats' if report['beats_dummy'] else 'does NOT beat'} the dummy baseline (the training mean)",
    ]
    for name, s in report["ablation"].items():
        lines.append(f"  without {name:<3}  MAE {s['mae_mean']:.6g} ± {s['mae_std']:.2g}  "
                     f"({(s['mae_mean'] - m['mae_mean']) / m['mae_mean'] * 100:+.1f}% vs all)")
    if report["image_problems"]:
        lines.append(f"  {len(report['image_problems'])} images could not be read (their image features "
                     f"are missing): {report['image_problems'][0]}")
    lines.append(f"saved to {path}")
    return "\n".join(lines)
