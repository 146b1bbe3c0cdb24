"""End-to-end image embedding throughput from JPEG files: ours against the straightforward baseline.

Baseline (DESIGN.md): per batch, PIL decode in the main process, HF CLIPImageProcessor, CLIPModel
fp32. Ours, index.embed.encode_stream with its three decodings (fp16 on CUDA):
  float: workers decode in full and run the model's float transform (the path before issue 18);
  cpu:   workers decode JPEGs reduced in the DCT, resize once, send uint8; the device normalises;
  gpu:   workers read files; the device decodes the JPEGs (nvJPEG) and resizes. On a machine
         without CUDA this runs torchvision's CPU decoder in the main process: the code, not the speed.
All are ViT-B/32 with random weights (no download); every rate and ratio comes from the same run.

    python bench/bench_embed.py --images 256             # CPU
    python bench/bench_embed.py --images 20000 --workers 14 --batch-size 512   # on a GPU machine
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
from clip_arena.index.embed import ImageItem, encode_stream  # noqa: E402
from clip_arena.models import get_encoder  # noqa: E402


def _make_jpeg(args: tuple[Path, int, tuple[int, int]]) -> Path:
    path, i, size = args
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    base = (np.sin(xx / (20 + i % 17)) + np.cos(yy / (15 + i % 11))) * 60 + 128
    rgb = np.stack([base, np.roll(base, i, axis=1), base[::-1]], axis=-1)
    rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=90)
    return path


def make_jpegs(folder: Path, n: int, size=(500, 375)) -> list[Path]:
    """Photo-sized JPEGs with smooth content and noise, so decoding costs what real photos cost
    (made in parallel: 20,000 of them would take minutes in one process)."""
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(folder / f"{i:06d}.jpg", i, size) for i in range(n)]
    if n < 64:
        return [_make_jpeg(job) for job in jobs]
    with ProcessPoolExecutor() as pool:
        return list(pool.map(_make_jpeg, jobs, chunksize=64))


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


def ours(paths: list[Path], batch_size: int, workers: int, decode: str) -> float:
    encoder = get_encoder("open_clip:ViT-B-32")  # random weights; fp16 on CUDA by itself
    items = [ImageItem(p.name, str(p)) for p in paths]
    start = time.perf_counter()
    done = sum(len(idx) for idx, _, _ in encode_stream(items, {"m": encoder}, batch_size, workers, progress=False,
                                                       decode=decode))
    elapsed = time.perf_counter() - start
    assert done == len(paths)
    return len(paths) / elapsed


class PreprocessOnly:
    """ViT-B/32's preprocessing with no model behind it: how fast images reach a model, which is
    the limit on a GPU (ViT-B/32 fp16 alone runs tens of thousands of images/s on an H100)."""

    def __init__(self, encoder):
        self.device, self.dtype, self.dim = encoder.device, encoder.dtype, 1
        self.preprocess, self.image_transform, self.fast_transform = (encoder.preprocess, encoder.image_transform,
                                                                       encoder.fast_transform)

    def encode_pixels(self, pixels):
        if pixels.dtype == torch.uint8:
            return self.encode_raw(pixels)
        pixels.to(self.device, dtype=self.dtype)
        return np.zeros((len(pixels), 1), np.float32)

    def encode_raw(self, pixels):
        self.preprocess.normalise(pixels.to(self.device), self.dtype)
        return np.zeros((len(pixels), 1), np.float32)


def baseline_preprocess(paths: list[Path], batch_size: int, device: str) -> float:
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor()
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        images = [Image.open(p).convert("RGB") for p in paths[i : i + batch_size]]
        processor(images=images, return_tensors="pt")["pixel_values"].to(device)
    return len(paths) / (time.perf_counter() - start)


def preprocess_only(paths: list[Path], batch_size: int, workers: int, decode: str) -> float:
    encoder = PreprocessOnly(get_encoder("open_clip:ViT-B-32"))
    items = [ImageItem(p.name, str(p)) for p in paths]
    start = time.perf_counter()
    done = sum(len(idx) for idx, _, _ in encode_stream(items, {"m": encoder}, batch_size, workers, progress=False,
                                                       decode=decode))
    assert done == len(paths)
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--size", default="500x375", help="JPEG size, WxH (COCO photos are about 640x480)")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    size = tuple(int(v) for v in args.size.split("x"))
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), args.images, size)
        warm = paths[: min(len(paths), args.batch_size)]
        baseline(warm, args.batch_size, device)  # load, compile, cache
        for decode in DECODINGS:
            ours(warm, args.batch_size, 0, decode)
        rates["baseline"] = baseline(paths, args.batch_size, device)
        for decode in DECODINGS:
            rates[decode] = ours(paths, args.batch_size, args.workers, decode)
        prep = {"baseline": baseline_preprocess(paths, args.batch_size, device)}
        for decode in DECODINGS:
            prep[decode] = preprocess_only(paths, args.batch_size, args.workers, decode)
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU x{os.cpu_count()}"
    print(f"device: {name}; {args.images} JPEGs {args.size}; batch {args.batch_size}; workers {args.workers}; "
          f"ViT-B/32 {'fp16' if device == 'cuda' else 'fp32'}")
    print(f"{'baseline (PIL + CLIPImageProcessor, fp32)':<50} {rates['baseline']:9.1f} images/s")
    for decode, label in DECODINGS.items():
        print(f"{label:<50} {rates[decode]:9.1f} images/s  {rates[decode] / rates['baseline']:5.2f}x baseline")
    print("images to the model's input on its device, no model (the limit on a GPU):")
    print(f"{'  baseline (PIL + CLIPImageProcessor, one process)':<50} {prep['baseline']:9.1f} images/s")
    for decode, label in DECODINGS.items():
        print(f"{'  ' + label:<50} {prep[decode]:9.1f} images/s  {prep[decode] / prep['baseline']:5.2f}x baseline")


DECODINGS = {"float": "ours, float transform in workers (before #18)", "cpu": "ours, --decode cpu (uint8, DCT-reduced)",
             "gpu": "ours, --decode gpu (JPEGs decoded on the device)"}


if __name__ == "__main__":
    main()
