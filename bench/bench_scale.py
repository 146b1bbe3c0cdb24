"""Past one machine: rows/s of `score` (or images/s of `embed`) with the local engine and with Ray
Data with 1, 2 and more encoding actors, in one run, each as a ratio to the local engine.

Same input for every engine: --rows rows over JPEGs (500x375) on local disk, --captions captions per
image as COCO has 5, ViT-B/32 with random weights. Ray times include starting the actors and
loading the model in each (what a job pays); the local Ray instance is started once, before timing.
Every engine's output is checked to equal the local engine's.

    python bench/bench_scale.py --rows 512                       # CPU: Ray actors on CPU
    python bench/bench_scale.py --task embed --rows 20000 --actors 1 2 4 --gpus-per-actor 0.25   # one GPU
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clip_arena.analyzer.batch import BatchOptions, score_csv  # noqa: E402
from bench.bench_embed import make_jpegs  # noqa: E402
from clip_arena.engines.ray_embed import build_catalog_ray  # noqa: E402
from clip_arena.engines.ray_runtime import RayOptions, ray_session  # noqa: E402
from clip_arena.engines.ray_score import score_csv_ray  # noqa: E402
from clip_arena.index.catalog import read_catalog  # noqa: E402
from clip_arena.index.embed import build_catalog, items_from_folder  # noqa: E402
from clip_arena.models import get_encoder  # noqa: E402


def saved_random_model(folder: Path, name: str) -> str:
    """open_clip's `name` with random weights, saved once: a bare `open_clip:ViT-B-32` would draw
    other random weights in every actor, and the outputs could not be compared."""
    import json

    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model(name)
    config = folder / f"{name}.json"
    config.write_text(json.dumps(open_clip.get_model_config(name)))
    weights = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return f"open_clip:{config}@{weights}"


def run_score(root: Path, csv_path: Path, model: str, ray_options: RayOptions | None, batch: int) -> tuple[float, Path]:
    out = root / f"scored-{ray_options.actors if ray_options else 'local'}.csv"
    options = BatchOptions(image_roots=[str(root)], batch_size=batch, chunk_rows=ray_options.part_rows if ray_options
                           else 256)
    start = time.perf_counter()
    if ray_options is None:
        report = score_csv(csv_path, out, get_encoder(model), options)
    else:
        report = score_csv_ray(csv_path, out, model, options, ray_options)
    seconds = time.perf_counter() - start
    assert report.scored == report.rows, report.summary()
    return report.rows / seconds, out


def run_embed(root: Path, images: Path, model: str, ray_options: RayOptions | None, batch: int) -> tuple[float, Path]:
    out = root / f"catalog-{ray_options.actors if ray_options else 'local'}.parquet"
    items = items_from_folder(images)
    start = time.perf_counter()
    if ray_options is None:
        report = build_catalog(items, {"base": get_encoder(model)}, out, batch_size=batch,
                               workers=min(4, os.cpu_count() or 1), progress=False)
    else:
        report = build_catalog_ray(items, {"base": model}, out, ray_options, batch_size=batch, progress=False)
    seconds = time.perf_counter() - start
    assert report.added == len(items), report.failed[:3]
    return len(items) / seconds, out


def same(task: str, a: Path, b: Path) -> bool:
    """Every cell equal, but vectors and cosines only to float precision: a Ray actor runs torch with
    the threads Ray gives it (1 per CPU), which reorders sums in the last bits."""
    if task == "score":
        def read(path):
            with open(path, newline="", encoding="utf-8") as f:
                return list(csv.reader(f))

        ra, rb = read(a), read(b)
        return ra[0] == rb[0] and len(ra) == len(rb) and all(
            x[:2] + x[-1:] == y[:2] + y[-1:] and abs(float(x[2] or 0) - float(y[2] or 0)) < 1e-5
            for x, y in zip(ra[1:], rb[1:]))
    ca, cb = read_catalog(a), read_catalog(b)
    return ca.ids == cb.ids and np.allclose(ca.embeddings("base"), cb.embeddings("base"), atol=1e-5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["score", "embed"], default="score")
    parser.add_argument("--rows", type=int, default=512, help="CSV rows (score) or images (embed)")
    parser.add_argument("--captions", type=int, default=4, help="captions per image (score)")
    parser.add_argument("--model", default="ViT-B-32", help="an open_clip architecture (random weights) or a spec")
    parser.add_argument("--actors", type=int, nargs="+",
                        default=sorted({1, 2, max(2, (os.cpu_count() or 2) // 2)}))
    parser.add_argument("--gpus-per-actor", type=float, default=0.0)
    parser.add_argument("--part-rows", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    unit = "rows/s" if args.task == "score" else "images/s"
    with tempfile.TemporaryDirectory() as tmp, ray_session(RayOptions()):
        root = Path(tmp)
        images = root / "images"
        n_images = args.rows if args.task == "embed" else max(1, args.rows // args.captions)
        images.mkdir()
        paths = make_jpegs(images, n_images)
        csv_path = root / "pairs.csv"
        with open(csv_path, "w", newline="") as f:
            csv.writer(f).writerows([("image", "caption")] + [
                (str(paths[i % len(paths)].relative_to(root)), f"photo number {i} of a test scene")
                for i in range(args.rows)])
        if ":" not in args.model:
            args.model = saved_random_model(root, args.model)
        run = run_score if args.task == "score" else run_embed
        source = csv_path if args.task == "score" else images
        get_encoder(args.model)  # the local engine's model load is not timed either (the driver's is)
        print(f"{args.task}, {args.rows} {'rows' if args.task == 'score' else 'images'}, {n_images} distinct "
              f"500x375 JPEGs, {args.model.split('/')[-1]}, {device}; Ray {args.gpus_per_actor:g} GPU per actor, "
              f"{args.part_rows} rows per part", flush=True)
        local_rate, local_out = run(root, source, args.model, None, args.batch_size)
        print(f"{'local engine':>16}: {local_rate:8.1f} {unit}  1.00x", flush=True)
        for actors in args.actors:
            options = RayOptions(actors=actors, gpus_per_actor=args.gpus_per_actor, part_rows=args.part_rows)
            rate, out = run(root, source, args.model, options, args.batch_size)
            check = "same output" if same(args.task, local_out, out) else "OUTPUT DIFFERS"
            print(f"{f'ray, {actors} actor' + ('s' if actors > 1 else ''):>16}: {rate:8.1f} {unit}  "
                  f"{rate / local_rate:.2f}x  ({check})", flush=True)


if __name__ == "__main__":
    main()
