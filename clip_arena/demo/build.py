"""Regenerate the bundled demo through the catalog pipeline, deterministically:

    make demo        # python -m clip_arena.demo.build  (about 25 minutes on 2 CPU cores)

It runs what a catalog team with a raw product CSV runs (README "From a raw catalog to shards"), in
Python, on the emoji:

1. Render the fully-qualified emoji (no skin tones) from Noto Color Emoji, and write the RAW CSV a
   catalog team starts from: id, title (the emoji's name), image, category (Unicode group),
   subcategory (subgroup), emoji.
2. `clip-arena prepare` (clip_arena.prepare.pipeline): clean -> attributes -> split -> shards, with
   the demo's vocabulary (vocabulary.yaml: object type and colour), a 70/15/15 split stratified by the
   subgroup (prepare's stratum is its category column: `--category-column subcategory`; the Unicode
   group stays in the `category` column), and WebDataset shards at the model's input (64 px JPEG).
   Captions are the raw names (`--caption-template '{title}'`): emoji names are clean already, and
   the clean stage harms two of them ("NEW button" -> "button", "keycap: *" -> "keycap", read as
   marketing noise and a stray mark); `clean_title` is kept beside them in the catalog.
3. demo:base: the tiny open_clip model of demo_model.json trained from scratch ("full") from the
   train shards on the plain names (`finetune --shards`).
4. The chicken and egg: zero-shot attributes need a CLIP model, and demo:base is the one this build
   trains. So step 2 runs first with the untrained architecture (its attributes are noise, and
   nothing trains on them: the captions hold no attributes), and once demo:base exists prepare is
   run again with `--resume --model demo:base`: the clean stage is kept (same fingerprint), the
   attributes are redone with demo:base, the split keeps every row's split (prepare keeps the splits
   of the catalog already in OUT), and the shards are rewritten with the new attributes in their json.
5. demo:finetuned: demo:base's image tower fine-tuned from the same train shards with the subgroup
   (a catalog team's cleaned attribute, in each sample's json) as positives: each train image pulled
   to its subgroup's centre, CLIP's loss on the plain names keeping it by its name; the text tower
   is kept.
6. embed: the catalog with base_embedding and finetuned_embedding (float16), the prepared columns
   (clean_title, the attributes and their confidences), and the test-split metrics.

    python -m clip_arena.demo.build --reuse-base   # keep the installed demo:base (step 3 is deterministic)
    python -m clip_arena.demo.build --work DIR     # keep prepare's output and both runs in DIR; run again
                                                   # to resume (finished steps are kept, a killed run resumes)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

# OpenMP threads that sleep rather than spin while waiting: on a shared machine two spinning threads
# ran each step at about half the speed. Only the waiting changes (the thread count and so every
# result stays), and it must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402 - after OMP_WAIT_POLICY
import pandas as pd
import torch

from clip_arena.core.settings import ASSETS_DIR
from clip_arena.finetune.evaluate import precision_at_k, text_to_image_recall
from clip_arena.finetune.shards import Shards
from clip_arena.finetune.train import TrainConfig, finetune
from clip_arena.index.catalog import read_catalog
from clip_arena.index.embed import ImageItem, build_catalog
from clip_arena.models.encoders import OpenClipEncoder
from clip_arena.models.loaders import DEMO_MODELS_DIR, load_open_clip
from clip_arena.models.spec import ModelSpec
from clip_arena.prepare.pipeline import Options, Prepare

DEMO_DIR = ASSETS_DIR / "demo"
METRICS = DEMO_DIR / "metrics.json"
CONFIG = Path(__file__).with_name("demo_model.json")
VOCABULARY = Path(__file__).with_name("vocabulary.yaml")
SEED = 0
# prepare's options (as `clip-arena prepare` flags): the subgroup is the split's stratum.
PREPARE = {"columns": {"id": "id", "title": "title", "image": "image", "category": "subcategory"},
           "split": "70/15/15", "template": "{title}", "seed": SEED}
RAW_COLUMNS = ("id", "title", "image", "category", "subcategory", "emoji")
# The prepared columns the bundled catalog keeps besides its captions and vectors.
KEPT = ("split", "category", "subcategory", "emoji", "clean_title", "object_type", "object_type_confidence",
        "colour", "colour_confidence")
# A shuffle buffer over the whole train split (about 1,300 samples): the stream as mixed as a catalog's
# permutation.
SHUFFLE = 2000
BASE = TrainConfig(scenario="full", epochs=60, batch_size=128, lr=1e-3, weight_decay=0.1, warmup_steps=50, seed=SEED,
                   shuffle_buffer=SHUFFLE)
# The fine-tune a catalog team would run with its cleaned attributes: the image tower only (the text
# tower stays as it is, so the plain names keep their embeddings), each image pulled to the centre of
# its Unicode subgroup (the mean embedding of the subgroup's train images under demo:base, fixed) while
# CLIP's loss on the plain names keeps it next to its own name. Small batches: the tiny image tower
# needs many steps to learn the subgroups.
FINETUNED = TrainConfig(scenario="full", freeze_text=True, epochs=120, batch_size=32, lr=2e-3, weight_decay=0.0,
                        warmup_steps=30, caption_template="{caption}", seed=SEED, positives="subcategory",
                        positive_weight=1.0, centre_loss_weight=1.0, centre_scale=30.0, shuffle_buffer=SHUFFLE)


def recipe() -> dict:
    return {"pipeline": ["render", "raw csv", "prepare (clean, attributes, split, shards)", "finetune --shards base",
                         "prepare --resume --model demo:base", "finetune --shards finetuned", "embed"],
            "prepare": {**PREPARE, "attributes": VOCABULARY.name, "attributes_model": "demo:base"},
            "base": asdict(BASE), "finetuned": asdict(FINETUNED)}


def write_raw_csv(rows: list[dict], path: Path) -> Path:
    """The raw catalog a team would start from: image paths relative to the demo folder."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(RAW_COLUMNS)
        for r in rows:
            writer.writerow([r["image_id"], r["caption"], r["image_uri"], r["category"], r["subcategory"], r["emoji"]])
    return path


def run_prepare(raw_csv: Path, out: Path, image_root: Path, model: str, resume: bool = False) -> dict:
    """`clip-arena prepare RAW.csv -o OUT --image-root DIR --attributes vocabulary.yaml --model M
    --category-column subcategory --split 70/15/15 --caption-template '{title}' [--resume]`."""
    opts = Options(csv=raw_csv, out=out, image_roots=[str(image_root)], vocabulary=str(VOCABULARY), model=model,
                   device="cpu", precision="fp32", resume=resume, **PREPARE)
    return Prepare(opts, progress=lambda *_: None).run()


def shards_of(out: Path) -> Shards:
    """`finetune --shards OUT/shards/train --val-shards OUT/shards/val`."""
    return Shards(str(out / "shards" / "train"), str(out / "shards" / "val"))


def catalog_items(prepared: Path) -> list[ImageItem]:
    """The prepared catalog's rows as embed's items (its image paths are the files prepare checked)."""
    frame = pd.read_parquet(prepared)
    return [ImageItem(r["image_id"], r["image_uri"], r["caption"], {k: _text(r[k]) for k in KEPT})
            for r in frame.to_dict("records")]


def _text(value) -> str:
    """A catalog's metadata columns are text: confidences written to three places."""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _encoder(folder: Path, name: str) -> OpenClipEncoder:
    """A fresh (uncached) encoder: the build rewrites these folders as it goes."""
    encoder = load_open_clip(ModelSpec("open_clip", f"local-dir:{folder}"), "cpu", "fp32")
    encoder.spec = name
    return encoder


def identical_share(catalog_path: Path, k: int = 4) -> float:
    """Share of test queries whose top-k lists (as the arena searches: the whole catalog, the query
    itself left out) are the same for base and finetuned: rounds the arena skips."""
    from clip_arena.index.search import Searcher

    catalog = read_catalog(catalog_path)
    searcher = Searcher.open(catalog, ["base", "finetuned"])
    test = np.flatnonzero(catalog.frame()["split"].to_numpy() == "test")
    same = [np.array_equal(searcher.neighbours("base", int(q), k)[0], searcher.neighbours("finetuned", int(q), k)[0])
            for q in test]
    return float(np.mean(same))


def measure(catalog_path: Path, split: str = "test") -> dict:
    """One split: text-to-image recall@1/5/10 with plain captions, and image-to-image precision@4 of
    same-subcategory neighbours among the whole catalog (and, for the test split, the identical share)."""
    catalog = read_catalog(catalog_path)
    frame = catalog.frame()
    rows = np.flatnonzero(frame["split"].to_numpy() == split)
    labels = frame["subcategory"].to_numpy()
    out = {}
    for method in catalog.methods:
        encoder = _encoder(DEMO_MODELS_DIR / f"demo_{method}", method)
        images = catalog.embeddings(method)
        texts = encoder.encode_texts(frame["caption"].iloc[rows].tolist())
        out[method] = {**text_to_image_recall(texts, images[rows]),
                       "precision@4": precision_at_k(images[rows], rows, images, labels, 4),
                       f"{split}_images": int(len(rows))}
    if split == "test":
        out["identical_top4_share"] = identical_share(catalog_path)
    return out


def main() -> None:
    from clip_arena.demo.emoji import build_images

    parser = argparse.ArgumentParser(prog="python -m clip_arena.demo.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs-scale", type=float, default=1.0,
                        help="shorten training for a smoke run (above 0; note that every build, a smoke run "
                             "too, rewrites assets/demo and assets/models: `git checkout assets` restores them)")
    parser.add_argument("--reuse-base", action="store_true",
                        help="keep the installed demo:base (the same bytes step 3 makes) and redo the rest")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep prepare's output and the training runs in this folder (default: a temporary "
                             "one); a second run with the same folder keeps the finished steps")
    args = parser.parse_args()
    if not args.epochs_scale > 0:
        parser.error(f"--epochs-scale must be above 0 (1 is the recipe); got {args.epochs_scale}")
    if args.reuse_base and not (DEMO_MODELS_DIR / "demo_base" / "open_clip_config.json").is_file():
        parser.error(f"--reuse-base needs a demo:base in {DEMO_MODELS_DIR / 'demo_base'}")
    if args.work:  # before anything in assets is touched
        _claim(args.work, {"recipe": recipe(), "epochs_scale": args.epochs_scale, "reuse_base": args.reuse_base})
    torch.set_num_threads(2)  # results depend on the thread count; 2 makes them repeatable
    previous = json.loads(METRICS.read_text()) if METRICS.is_file() else {}
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    rows = build_images(DEMO_DIR / "images")
    print(f"rendered {len(rows)} emoji", flush=True)
    scale = lambda cfg: TrainConfig(**{**cfg.__dict__, "epochs": max(1, round(cfg.epochs * args.epochs_scale))})  # noqa: E731
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.work or Path(scratch)
        raw_csv = write_raw_csv(rows, tmp / "emoji.csv")
        out = tmp / "prepared"
        if args.reuse_base:
            base_history = previous.get("training", {}).get("base", [])  # kept from the run that made it
        elif _finished(tmp / "base_run"):
            _install(tmp / "base_run" / "model", "base")
            base_history = json.loads((tmp / "base_run" / "history.json").read_text())
        else:
            print(json.dumps(run_prepare(raw_csv, out, DEMO_DIR, f"open_clip:{CONFIG}", resume=True)), flush=True)
            base = finetune(shards_of(out), f"open_clip:{CONFIG}", tmp / "base_run", scale(BASE), resume=True)
            _install(base.model_dir, "base")
            base_history = base.history
        summary = run_prepare(raw_csv, out, DEMO_DIR, "demo:base", resume=True)
        print(json.dumps(summary), flush=True)
        if _finished(tmp / "finetuned_run"):
            tuned_dir = tmp / "finetuned_run" / "model"
            tuned_history = json.loads((tmp / "finetuned_run" / "history.json").read_text())
        else:
            tuned = finetune(shards_of(out), "demo:base", tmp / "finetuned_run", scale(FINETUNED), resume=True)
            tuned_dir, tuned_history = tuned.model_dir, tuned.history
        _install(tuned_dir, "finetuned")
        history = {"base": base_history, "finetuned": tuned_history}
        items = catalog_items(out / "catalog.parquet")
        report = json.loads((out / "report.json").read_text())
    encoders = {m: _encoder(DEMO_MODELS_DIR / f"demo_{m}", f"demo:{m}") for m in ("base", "finetuned")}
    build_catalog(items, encoders, DEMO_DIR / "catalog.parquet", dtype="float16", workers=0, progress=False)
    metrics = measure(DEMO_DIR / "catalog.parquet")
    val_metrics = measure(DEMO_DIR / "catalog.parquet", "val")  # the split the recipe was chosen on
    prepared = {k: report[k] for k in ("input_rows", "usable", "splits", "attributes_tier")}
    prepared["duplicates"] = len(report["duplicates"])
    METRICS.write_text(json.dumps({"metrics": metrics, "val_metrics": val_metrics, "recipe": recipe(),
                                   "prepare": prepared, "training": history}, indent=2))
    print(json.dumps(metrics, indent=2))


def _claim(work: Path, made_by: dict) -> None:
    """--work keeps finished runs, so a folder a different recipe made must not be reused: it is
    refused in one sentence (a new folder, or none, starts afresh)."""
    if work.exists() and not work.is_dir():
        raise SystemExit(f"--work {work} is a file; give a folder (it is made if missing).")
    mark = work / "recipe.json"
    here = json.dumps(made_by, indent=2, sort_keys=True)
    try:
        work.mkdir(parents=True, exist_ok=True)
        if mark.is_file() and mark.read_text() != here:
            raise SystemExit(f"--work {work} holds runs of another recipe or --epochs-scale (see its recipe.json); "
                             "give a new folder to build with this one.")
        mark.write_text(here)
    except OSError as exc:
        raise SystemExit(f"--work {work}: cannot write there ({exc.strerror}).") from None


def _finished(run: Path) -> bool:
    """A training run of --work that saved its model and history (a killed one resumes instead)."""
    return (run / "model" / "open_clip_model.safetensors").is_file() and (run / "history.json").is_file()


def _install(model_dir: Path, name: str) -> None:
    """Copy a trained model into assets as float16 (half the bytes; loads as float32)."""
    from safetensors.torch import load_file, save_file

    target = DEMO_MODELS_DIR / f"demo_{name}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy(model_dir / "open_clip_config.json", target)
    state = load_file(str(model_dir / "open_clip_model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()},
              str(target / "open_clip_model.safetensors"))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the assets are half rewritten: say how to get back or go on
        raise SystemExit("interrupted: assets/demo and assets/models are partly rebuilt; `git checkout assets` "
                         "restores the committed demo, and the same command with --work DIR resumes a build "
                         "started with it.") from None
