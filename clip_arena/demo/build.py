"""Regenerate the bundled demo: images, both demo models and the catalog, deterministically.

    make demo        # python -m clip_arena.demo.build  (about 25 minutes on 2 CPU cores)

1. Render the fully-qualified emoji (no skin tones) from Noto Color Emoji; caption = name,
   category = Unicode group, subcategory = subgroup; a seeded split stratified by subgroup.
2. demo:base: the tiny open_clip model of demo_model.json trained from scratch ("full") on the
   train split with plain captions.
3. demo:finetuned: demo:base's image tower fine-tuned with the catalog's subcategory (the Unicode
   subgroup, as a catalog team's cleaned attributes): each train image pulled to its subgroup's
   centre, CLIP's loss on the plain names keeping it by its name; the text tower is kept.
4. The catalog with base_embedding and finetuned_embedding (float16), and the test-split metrics.

    python -m clip_arena.demo.build --reuse-base   # keep the installed demo:base (step 2 is deterministic)
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from clip_arena.core.settings import ASSETS_DIR
from clip_arena.finetune.evaluate import precision_at_k, text_to_image_recall
from clip_arena.finetune.train import TrainConfig, finetune
from clip_arena.index.catalog import build_table, catalog_meta, read_catalog, write_catalog
from clip_arena.index.embed import ImageItem, build_catalog
from clip_arena.models.encoders import OpenClipEncoder
from clip_arena.models.loaders import DEMO_MODELS_DIR, load_open_clip
from clip_arena.models.spec import ModelSpec

DEMO_DIR = ASSETS_DIR / "demo"
METRICS = DEMO_DIR / "metrics.json"
CONFIG = Path(__file__).with_name("demo_model.json")
SEED = 0
BASE = TrainConfig(scenario="full", epochs=60, batch_size=128, lr=1e-3, weight_decay=0.1, warmup_steps=50, seed=SEED)
# The fine-tune a catalog team would run with its cleaned attributes: the image tower only (the text
# tower stays as it is, so the plain names keep their embeddings), each image pulled to the centre of
# its Unicode subgroup (the mean embedding of the subgroup's train images under demo:base, fixed) while
# CLIP's loss on the plain names keeps it next to its own name. Small batches: the tiny image tower
# needs many steps to learn the subgroups.
FINETUNED = TrainConfig(scenario="full", freeze_text=True, epochs=120, batch_size=32, lr=2e-3, weight_decay=0.0,
                        warmup_steps=30, caption_template="{caption}", seed=SEED, positives="subcategory",
                        positive_weight=1.0, centre_loss_weight=1.0, centre_scale=30.0)


def recipe() -> dict:
    from dataclasses import asdict

    return {"base": asdict(BASE), "finetuned": asdict(FINETUNED)}


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


def measure(catalog_path: Path) -> dict:
    """Test split: text-to-image recall@1/5/10 with plain captions, and image-to-image precision@4
    of same-subcategory neighbours among the whole catalog."""
    catalog = read_catalog(catalog_path)
    frame = catalog.frame()
    test = np.flatnonzero(frame["split"].to_numpy() == "test")
    labels = frame["subcategory"].to_numpy()
    out = {}
    for method in catalog.methods:
        encoder = _encoder(DEMO_MODELS_DIR / f"demo_{method}", method)
        images = catalog.embeddings(method)
        texts = encoder.encode_texts(frame["caption"].iloc[test].tolist())
        out[method] = {**text_to_image_recall(texts, images[test]),
                       "precision@4": precision_at_k(images[test], test, images, labels, 4),
                       "test_images": int(len(test))}
    out["identical_top4_share"] = identical_share(catalog_path)
    return out


def main() -> None:
    from clip_arena.demo.emoji import build_images

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="shorten training for a smoke run")
    parser.add_argument("--reuse-base", action="store_true",
                        help="keep the installed demo:base (the same bytes step 2 makes) and redo the rest")
    args = parser.parse_args()
    if args.reuse_base and not (DEMO_MODELS_DIR / "demo_base" / "open_clip_config.json").is_file():
        parser.error(f"--reuse-base needs a demo:base in {DEMO_MODELS_DIR / 'demo_base'}")
    torch.set_num_threads(2)  # results depend on the thread count; 2 makes them repeatable
    previous = json.loads(METRICS.read_text()) if METRICS.is_file() else {}
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    rows = build_images(DEMO_DIR / "images", SEED)
    print(f"rendered {len(rows)} emoji")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        staging = tmp / "catalog.parquet"  # no vectors yet: captions, splits, categories for training
        write_catalog(staging, build_table({k: [r[k] for r in rows] for k in rows[0]}, {}), catalog_meta({}, {}),
                      require_embeddings=False)
        shutil.copytree(DEMO_DIR / "images", tmp / "images")
        scale = lambda cfg: TrainConfig(**{**cfg.__dict__, "epochs": max(1, round(cfg.epochs * args.epochs_scale))})  # noqa: E731
        if args.reuse_base:
            base_history = previous.get("training", {}).get("base", [])  # kept from the run that made it
        else:
            base = finetune(staging, f"open_clip:{CONFIG}", tmp / "base_run", scale(BASE))
            _install(base.model_dir, "base")
            base_history = base.history
        tuned = finetune(staging, "demo:base", tmp / "finetuned_run", scale(FINETUNED))
        _install(tuned.model_dir, "finetuned")
        history = {"base": base_history, "finetuned": tuned.history}
    encoders = {m: _encoder(DEMO_MODELS_DIR / f"demo_{m}", f"demo:{m}") for m in ("base", "finetuned")}
    items = [ImageItem(r["image_id"], str((DEMO_DIR / r["image_uri"]).resolve()), r["caption"],
                       {k: r[k] for k in ("split", "category", "subcategory", "emoji")}) for r in rows]
    build_catalog(items, encoders, DEMO_DIR / "catalog.parquet", dtype="float16", workers=0, progress=False)
    metrics = measure(DEMO_DIR / "catalog.parquet")
    METRICS.write_text(json.dumps({"metrics": metrics, "recipe": recipe(), "training": history}, indent=2))
    print(json.dumps(metrics, indent=2))


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
    main()
