"""End-to-end image embedding throughput from JPEG files: ours against the straightforward baseline.

Baseline (DESIGN.md): per batch, PIL decode in the main process, HF CLIPImageProcessor, CLIPModel
fp32. Ours: index.embed.encode_stream: DataLoader worker processes decode through the safe loader,
open_clip transform, fp16 on CUDA. Both are ViT-B/32 with random weights (no download); images/s
of both and their ratio come from the same run.

    python bench/bench_embed.py --images 256             # CPU
    python bench/bench_embed.py --images 20000 --workers 14 --batch-size 256   # on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from index.embed import ImageItem, encode_stream  # noqa: E402
from models import get_encoder  # noqa: E402


def make_jpegs(folder: Path, n: int, size=(500, 375)) -> list[Path]:
    """Photo-sized JPEGs with smooth content and noise, so decoding costs what real photos cost."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    paths = []
    for i in range(n):
        base = (np.sin(xx / (20 + i % 17)) + np.cos(yy / (15 + i % 11))) * 60 + 128
        rgb = np.stack([base, np.roll(base, i, axis=1), base[::-1]], axis=-1)
        rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:06d}.jpg"
        Image.fromarray(rgb).save(path, quality=90)
        paths.append(path)
    return paths


def baseline(paths: list[Path], batch_size: int, device: str) -> float:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    model = CLIPModel(CLIPConfig()).to(device).eval()  # defaults are ViT-B/32
    processor = CLIPImageProcessor()
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(paths), batch_size):
            images = [Image.open(p).convert("RGB") for p in paths[i : i + batch_size]]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
            out = model.get_image_features(pixel_values=pixels)
            feats = out if isinstance(out, torch.Tensor) else out.pooler_output
            (feats / feats.norm(dim=-1, keepdim=True)).cpu()
    return len(paths) / (time.perf_counter() - start)


def ours(paths: list[Path], batch_size: int, workers: int) -> float:
    encoder = get_encoder("open_clip:ViT-B-32")  # random weights; fp16 on CUDA by itself
    items = [ImageItem(p.name, str(p)) for p in paths]
    start = time.perf_counter()
    done = sum(len(idx) for idx, _, _ in encode_stream(items, {"m": encoder}, batch_size, workers, progress=False))
    elapsed = time.perf_counter() - start
    assert done == len(paths)
    return len(paths) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), args.images)
        warm = paths[: min(len(paths), args.batch_size)]
        baseline(warm, args.batch_size, device), ours(warm, args.batch_size, 0)  # load, compile, cache
        base_rate = baseline(paths, args.batch_size, device)
        our_rate = ours(paths, args.batch_size, args.workers)
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU x{os.cpu_count()}"
    print(f"device: {name}; {args.images} JPEGs 500x375; batch {args.batch_size}; workers {args.workers}")
    print(f"baseline (PIL + CLIPImageProcessor, fp32): {base_rate:8.1f} images/s")
    print(f"ours (workers + open_clip, {'fp16' if device == 'cuda' else 'fp32'}):      {our_rate:8.1f} images/s")
    print(f"ratio: {our_rate / base_rate:.2f}x")


if __name__ == "__main__":
    main()
