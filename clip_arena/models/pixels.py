"""The fast way into a CLIP image tower: uint8 pixels out of the decoders, normalised on the device.

Every CLIP-style preprocessing we load (open_clip's and Hugging Face's CLIPImageProcessor) is the
same recipe: resize the shortest side to S (bicubic), crop the centre S x S, scale to [0, 1],
subtract a mean and divide by a std per channel. `Preprocess` holds that recipe. Workers then only
resize and crop (uint8: 4x smaller to pickle and to copy than float32), and the device does the
arithmetic on the whole batch. A model whose preprocessing is anything else keeps its own
float transform (`preprocess_of` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from clip_arena.models.decode import DECODE_CHOICES, decode_mode  # noqa: F401 - imported from here too


# An upsampled image is resized whole, then cropped, up to this many resized pixels; past it (a
# 65,000 x 1 strip) only the region the crop keeps is resampled.
_WHOLE_RESIZE_PIXELS = 4_000_000


@dataclass(frozen=True)
class Preprocess:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    floor_crop: bool = False  # Hugging Face crops at (h - S) // 2; torchvision rounds (h - S) / 2

    # -- in the workers ----------------------------------------------------------------
    def resized_shape(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) with the shortest side at S, as torchvision's and HF's Resize(int) compute it."""
        if width <= height:
            return self.size, max(1, int(self.size * height / width))
        return max(1, int(self.size * width / height)), self.size

    def crop_box(self, width: int, height: int) -> tuple[int, int]:
        """(left, top) of the centre crop of a resized image."""
        if self.floor_crop:
            return (width - self.size) // 2, (height - self.size) // 2
        return int(round((width - self.size) / 2.0)), int(round((height - self.size) / 2.0))

    def to_uint8(self, image: Image.Image) -> torch.Tensor:
        """An RGB image -> (3, S, S) uint8: the model's pixels before scaling and normalising.
        A downsampled image has only the source region the crop keeps resampled (PIL's box), with the
        same sampling positions and filter as resize-then-crop: a 65,000 x 1 image costs S x S, not
        14M x S. The box's filter taps stop at its edges, where the whole resize reads past them: that
        moves a downsampled pixel by a level at most, rarely, but upsampled (a 2 x 201 image) the box
        is a few source pixels and whole rows differ, so an upsampled image is resized whole, then
        cropped, as the model's own transform does (unless that would be too large to make)."""
        width, height = self.resized_shape(*image.size)
        left, top = self.crop_box(width, height)
        upsampled = width > image.size[0] or height > image.size[1]
        if (width, height) == image.size or (upsampled and width * height <= _WHOLE_RESIZE_PIXELS):
            if (width, height) != image.size:
                image = image.resize((width, height), Image.BICUBIC)
            image = image.crop((left, top, left + self.size, top + self.size))
        else:
            sx, sy = image.size[0] / width, image.size[1] / height
            box = (left * sx, top * sy, (left + self.size) * sx, (top + self.size) * sy)
            image = image.resize((self.size, self.size), Image.BICUBIC, box=box)
        return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(self.size, self.size, 3).permute(2, 0, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:  # a transform, like the model's own
        return self.to_uint8(image)

    # -- on the device -----------------------------------------------------------------
    def resize_on_device(self, pixels: torch.Tensor) -> torch.Tensor:
        """One decoded (3, H, W) uint8 image on any device -> (3, S, S) float in 0..255, resized and
        cropped as to_uint8 does (antialiased bicubic, which PIL's resize is)."""
        _, height, width = pixels.shape
        new_w, new_h = self.resized_shape(width, height)
        x = pixels.unsqueeze(0).float()
        if (new_w, new_h) != (width, height):
            x = torch.nn.functional.interpolate(x, size=(new_h, new_w), mode="bicubic", antialias=True,
                                                align_corners=False).clamp_(0, 255)
        left, top = self.crop_box(new_w, new_h)
        # a copy, so the whole resized image is freed now, not when its batch is stacked
        return x[0, :, top : top + self.size, left : left + self.size].contiguous()

    def normalise(self, pixels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(N, 3, S, S) pixels in 0..255 (uint8 or float, on the model's device) -> the model's input.
        The arithmetic is float32 whatever the model's precision, then cast."""
        mean = torch.tensor(self.mean, device=pixels.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, device=pixels.device).view(1, 3, 1, 1) * 255.0
        return ((pixels.float() - mean) / std).to(dtype)


def preprocess_of(encoder) -> Preprocess | None:
    """The encoder's preprocessing as a Preprocess, or None when it is not the CLIP recipe."""
    processor = getattr(encoder, "processor", None)
    if processor is not None:
        return _from_hf(getattr(processor, "image_processor", None))
    return _from_torchvision(getattr(encoder, "image_transform", None))


def _square(size) -> int | None:
    if isinstance(size, int):
        return size
    if isinstance(size, (tuple, list)) and len(size) in (1, 2) and len(set(size)) == 1:
        return int(size[0])
    return None


def _from_torchvision(transform) -> Preprocess | None:
    from torchvision import transforms as T

    steps = list(getattr(transform, "transforms", []))
    names = [type(s).__name__ for s in steps]
    # open_clip's eval transform; the mode/tensor steps are no-ops on the RGB images the loader makes
    if len(steps) != 5 or names[3:] not in (["MaybeToTensor", "Normalize"], ["ToTensor", "Normalize"]) \
            or names[2] not in ("MaybeConvertMode", "_convert_to_rgb", "function", "Lambda"):
        return None
    resize, crop, normalize = steps[0], steps[1], steps[4]
    if not (isinstance(resize, T.Resize) and isinstance(crop, T.CenterCrop)):
        return None
    # Resize(S) or Resize([S]) scales the shortest side; Resize((S, S)) squashes (open_clip's "squash")
    side = resize.size if isinstance(resize.size, int) else (
        resize.size[0] if isinstance(resize.size, (list, tuple)) and len(resize.size) == 1 else None)
    crop_side = _square(crop.size)
    if side is None or side != crop_side or resize.max_size is not None \
            or resize.interpolation != T.InterpolationMode.BICUBIC:
        return None
    return Preprocess(side, tuple(float(v) for v in normalize.mean), tuple(float(v) for v in normalize.std))


def _field(size, key):
    """A size entry of an HF processor: a dict in older transformers, a SizeDict in 5."""
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def _from_hf(image_processor) -> Preprocess | None:
    if image_processor is None or type(image_processor).__name__ not in ("CLIPImageProcessor", "CLIPImageProcessorFast"):
        return None
    p = image_processor
    short = _field(p.size, "shortest_edge")
    if not (p.do_resize and p.do_center_crop and p.do_rescale and p.do_normalize) or not short \
            or _field(p.crop_size, "height") != short or _field(p.crop_size, "width") != short \
            or abs(float(p.rescale_factor) - 1 / 255) > 1e-9 or int(p.resample) != int(Image.BICUBIC):
        return None
    return Preprocess(int(short), tuple(float(v) for v in p.image_mean), tuple(float(v) for v in p.image_std),
                      floor_crop=True)
