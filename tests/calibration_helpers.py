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


def write_pairs(folder: Path, items: range, seed: int, mismatched_per_image: int = 2, name: str = "pairs.csv",
                draw=image_of) -> Path:
    """A pairs CSV (relative image paths, as a user writes them) of items' images with their own
    caption (1) and others' captions (0)."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = ["image,caption,match"]
    for item in items:
        view = int(rng.integers(0, 60000))
        rel = f"img/{item}_{view}.png"
        draw(item, view).save(folder / rel)
        lines.append(f"{rel},\"item {item}, view {rng.integers(1e9)}\",1")
        for _ in range(mismatched_per_image):
            other = int(rng.choice([i for i in items if i != item]))
            lines.append(f"{rel},\"item {other}, view {rng.integers(1e9)}\",0")
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- a tiny two-tower model trained, in the test, to separate matched from mismatched pairs ----------
# Item k has a fixed appearance (a random 8x8 RGB pattern); its image is that pattern plus view noise,
# its caption "item k, view s" reads as the same pattern plus caption noise (a caption that describes
# the item). Each tower is a learned linear map to 16 dimensions: untrained, the towers are unrelated
# and cosines tell nothing; CLIP's loss on training items aligns them, and the alignment carries over
# to items never seen in training.
PIXELS = 3 * 8 * 8


def appearance(item: int) -> np.ndarray:
    return np.random.default_rng([7, item]).standard_normal(PIXELS)


def pattern_image(item: int, view: int) -> Image.Image:
    noise = np.random.default_rng([8, item, view]).standard_normal(PIXELS)
    pixels = np.clip(127 + 30 * (appearance(item) + 0.7 * noise), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels.reshape(3, 8, 8).transpose(1, 2, 0))


class _Flat:
    """PIL -> the 8x8 RGB pixels, centred and scaled, as one flat float vector (picklable)."""

    def __call__(self, image: Image.Image) -> torch.Tensor:
        small = np.asarray(image.convert("RGB").resize((8, 8), Image.Resampling.NEAREST), np.float32)
        return torch.tensor((small.transpose(2, 0, 1).reshape(-1) - 127) / 30)


class TrainedEncoder(Encoder):
    def __init__(self, seed: int = 0, spec: str = "tiny:trained"):
        torch.manual_seed(seed)
        self.model = torch.nn.ModuleDict({"image": torch.nn.Linear(PIXELS, DIM, bias=False),
                                          "text": torch.nn.Linear(PIXELS, DIM, bias=False)})
        self.spec, self.device, self.precision, self.dim, self.context_length = spec, "cpu", "fp32", DIM, 77
        self.image_transform = _Flat()
        self._preprocess = None

    @staticmethod
    def _read(text: str) -> torch.Tensor:
        noise = np.random.default_rng([9, zlib.crc32(text.encode())]).standard_normal(PIXELS)
        return torch.tensor(appearance(_item_of(text)) + 0.7 * noise, dtype=torch.float32)

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model["image"](pixels.reshape(len(pixels), -1))

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        return self.model["text"](torch.stack([self._read(t) for t in texts]))

    def train_on(self, items: range, steps: int = 300, batch: int = 64, seed: int = 0) -> list[float]:
        """CLIP's symmetric contrastive loss on images and captions of `items` (drawn as pattern_image
        and _read draw them, a batch at a time); the losses, per step."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny matrices: more threads only wait on each other (10x slower on 2 busy cores)
        try:
            return self._train(items, steps, batch, seed)
        finally:
            torch.set_num_threads(threads)

    def _train(self, items: range, steps: int, batch: int, seed: int) -> list[float]:
        rng = np.random.default_rng(seed)
        looks = np.stack([appearance(k) for k in items])
        optimiser = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        losses = []
        for _ in range(steps):
            chosen = rng.choice(len(looks), batch, replace=False)
            pixels = np.clip(127 + 30 * (looks[chosen] + 0.7 * rng.standard_normal((batch, PIXELS))), 0, 255)
            images = torch.tensor((pixels.astype(np.uint8).astype(np.float32) - 127) / 30)
            captions = torch.tensor(looks[chosen] + 0.7 * rng.standard_normal((batch, PIXELS)), dtype=torch.float32)
            img = torch.nn.functional.normalize(self.model["image"](images), dim=-1)
            txt = torch.nn.functional.normalize(self.model["text"](captions), dim=-1)
            logits = 10 * img @ txt.T
            target = torch.arange(batch)
            loss = (torch.nn.functional.cross_entropy(logits, target)
                    + torch.nn.functional.cross_entropy(logits.T, target)) / 2
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        self.model.eval()
        return losses
