"""A synthetic encoder whose matched pairs score higher than mismatched ones, with overlap, so that
calibration has something real to learn: a stand-in for a model trained to separate them, running
through the project's Encoder class (encode_images, encode_texts, the batch path) in milliseconds.

Item k has a hidden unit vector u_k (the model's weights). An image of item k is a PNG whose left half
carries k and right half a noise seed; its embedding is u_k plus seeded noise. A caption "item k, view s"
embeds as u_k plus noise seeded by its text. Matched pairs share u_k; mismatched ones do not.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clip_arena.models.encoders import Encoder

DIM = 16
NOISE = 1.1


class _Pixels:
    """PIL -> 8x8 RGB as a (3, 8, 8) float tensor (picklable, as image transforms are)."""

    def __call__(self, image: Image.Image) -> torch.Tensor:
        small = image.convert("RGB").resize((8, 8), Image.Resampling.NEAREST)
        return torch.tensor(np.asarray(small), dtype=torch.float32).permute(2, 0, 1)


class SyntheticEncoder(Encoder):
    def __init__(self, items: int = 200, seed: int = 0, noise: float = NOISE, spec: str = "synthetic:test"):
        gen = torch.Generator().manual_seed(seed)
        self.model = torch.nn.Module()
        self.model.register_parameter("items", torch.nn.Parameter(torch.randn(items, DIM, generator=gen)))
        self.spec, self.device, self.precision, self.dim, self.context_length = spec, "cpu", "fp32", DIM, 77
        self.noise, self.seed = noise, seed
        self.image_transform = _Pixels()
        self._preprocess = None  # not the CLIP recipe: Encoder.preprocess need not probe (and import) torchvision

    def _vector(self, item: int, noise_seed: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, noise_seed])
        u = self.model.items[item % len(self.model.items)].detach()
        u = u / u.norm()
        return u + self.noise / np.sqrt(DIM) * torch.tensor(rng.standard_normal(DIM), dtype=torch.float32)

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        out = []
        for p in pixels.round().to(torch.int64):  # red, green: the left half (item hi, lo), the right half (seed)
            item, noise_seed = int(p[0, 4, 1] * 256 + p[1, 4, 1]), int(p[0, 4, 6] * 256 + p[1, 4, 6])
            out.append(self._vector(item, 1_000_000 + noise_seed))
        return torch.stack(out)

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([self._vector(_item_of(t), zlib.crc32(t.encode())) for t in texts])


def _item_of(text: str) -> int:
    try:
        return int(text.split()[1].rstrip(","))
    except (IndexError, ValueError):
        return zlib.crc32(text.encode()) % 997


def image_of(item: int, view: int) -> Image.Image:
    array = np.full((8, 8, 3), 127, np.uint8)
    array[:, :4, :2] = divmod(item, 256)
    array[:, 4:, :2] = divmod(view, 256)
    return Image.fromarray(array)


def write_pairs(folder: Path, items: range, seed: int, mismatched_per_image: int = 2, name: str = "pairs.csv") -> Path:
    """A pairs CSV (relative image paths, as a user writes them) of items' images with their own
    caption (1) and others' captions (0)."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = ["image,caption,match"]
    for item in items:
        view = int(rng.integers(0, 60000))
        rel = f"img/{item}_{view}.png"
        image_of(item, view).save(folder / rel)
        lines.append(f"{rel},\"item {item}, view {rng.integers(1e9)}\",1")
        for _ in range(mismatched_per_image):
            other = int(rng.choice([i for i in items if i != item]))
            lines.append(f"{rel},\"item {other}, view {rng.integers(1e9)}\",0")
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
