"""JPEG decoding on the model's device (nvJPEG through torchvision on CUDA), the CPU decoder the
fallback for every image the device cannot take.

Workers read the file (with the safe loader's caps and roots) and look at its header only: a
baseline RGB or greyscale JPEG with no EXIF rotation goes to the device as bytes; anything else
(PNG, CMYK, an EXIF-rotated photo, a corrupt file) is decoded on the CPU there and then, through
the safe loader, so its rules and its error messages hold. A JPEG the device then fails to decode
is decoded on the CPU too: one bad file never fails its batch.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from clip_arena.analyzer.images import decode_image
from clip_arena.core.errors import ImageLoadError
from clip_arena.core.settings import FetchLimits
from clip_arena.models.pixels import Preprocess

JPEG_MAGIC = b"\xff\xd8\xff"
EXIF_ORIENTATION = 0x0112
# The device resizes the whole image before cropping; past this aspect ratio the resized image is
# many times the crop (a 65,000 x 1 strip: 14M x S), so the CPU path, which resamples only the
# crop, takes it.
MAX_DEVICE_ASPECT = 8


@dataclass
class EncodedJpeg:
    """A JPEG for the device to decode: its bytes and its name for messages."""
    data: np.ndarray  # uint8, 1-D
    name: str
    pixels: int = 0  # width x height, from the header: what decoding it will hold on the device


@dataclass(frozen=True)
class ForDevice:
    """The batch scorer's 'transform' when JPEGs are decoded on the device: a loader reads the
    file and calls prepare() instead of decoding it (analyzer.batch.load_cell)."""
    preprocess: Preprocess


def device_decodable(data: bytes, limits: FetchLimits) -> bool:
    """Whether the device decoder gives the same pixels the CPU loader would (header only)."""
    return _device_pixels(data, limits) > 0


def _device_pixels(data: bytes, limits: FetchLimits) -> int:
    """The JPEG's pixel count when the device should decode it, else 0."""
    if data[:3] != JPEG_MAGIC or b"\xff\xd9" not in data[-64:]:  # no end marker: maybe truncated,
        return 0  # which nvJPEG may decode to grey where the CPU loader refuses it
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - the CPU path says what is wrong with it
        return 0
    # CMYK/YCCK and EXIF rotations are the CPU loader's job; so is refusing an oversized image.
    ok = image.format == "JPEG" and image.mode in ("RGB", "L") and orientation in (None, 1) \
        and 0 < width * height <= limits.max_pixels and max(width, height) <= MAX_DEVICE_ASPECT * min(width, height)
    return width * height if ok else 0


def cpu_pixels(data: bytes, name: str, limits: FetchLimits, preprocesses: list[Preprocess]) -> list[torch.Tensor]:
    """Decode on the CPU through the safe loader (reduced in the DCT to what the models need) ->
    one uint8 tensor per preprocessing. Raises ImageLoadError."""
    return decode_image(data, name, limits, target_size=min(p.size for p in preprocesses),
                        then=lambda image: [p.to_uint8(image) for p in preprocesses])


def prepare(data: bytes, name: str, limits: FetchLimits, preprocesses: list[Preprocess]):
    """In a worker: an EncodedJpeg for the device, or the CPU-decoded uint8 tensors."""
    pixels = _device_pixels(data, limits)
    if pixels:
        return EncodedJpeg(np.frombuffer(data, np.uint8).copy(), name, pixels)
    return cpu_pixels(data, name, limits, preprocesses)


def _decode_jpegs(tensors: list[torch.Tensor], device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():  # torchvision 0.29 marks its decoders as moving to TorchCodec
        warnings.simplefilter("ignore")
        return decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device)


def _groups(jpegs: list[int], items: list, budget: int) -> list[list[int]]:
    """Consecutive JPEGs whose decoded pixels fit the decode budget together (one alone if larger)."""
    groups, current, used = [], [], 0
    for k in jpegs:
        pixels = items[k].pixels or 1
        if current and budget > 0 and used + pixels > budget:
            groups.append(current)
            current, used = [], 0
        current.append(k)
        used += pixels
    return groups + ([current] if current else [])


def _decode_group(group: list[int], items: list, device) -> dict[int, torch.Tensor]:
    try:  # one batched call is what makes nvJPEG fast
        return dict(zip(group, _decode_jpegs([torch.from_numpy(items[k].data) for k in group], device)))
    except RuntimeError:  # a file it cannot take fails the whole call: find it
        decoded = {}
        for k in group:
            try:
                decoded[k] = _decode_jpegs([torch.from_numpy(items[k].data)], device)[0]
            except RuntimeError:
                pass
        return decoded


def decode_batch(items: list, preprocesses: list[Preprocess], device, limits: FetchLimits):
    """decode_on_device, split for a model call: (positions decoded, one (N, 3, S, S) batch in 0..255
    per preprocessing, [(position, ImageLoadError)] of the rest)."""
    decoded = decode_on_device(items, preprocesses, device, limits)
    kept = [k for k, d in enumerate(decoded) if not isinstance(d, ImageLoadError)]
    failed = [(k, d) for k, d in enumerate(decoded) if isinstance(d, ImageLoadError)]
    batches = [torch.stack([decoded[k][t] for k in kept]) for t in range(len(preprocesses))] if kept else []
    return kept, batches, failed


def decode_on_device(items: list, preprocesses: list[Preprocess], device, limits: FetchLimits) -> list:
    """Each worker output (EncodedJpeg or CPU tensors) -> one (3, S, S) tensor per preprocessing, in
    0..255 on `device`, or the ImageLoadError that image gave. Full-size decodes are held a group at
    a time, within the decode pixel budget (CLIP_ARENA_DECODE_PIXELS), and shrunk to S x S at once."""
    out: list = [None] * len(items)
    jpegs = [k for k, item in enumerate(items) if isinstance(item, EncodedJpeg)]
    for group in _groups(jpegs, items, limits.decode_pixels):
        for k, full in _decode_group(group, items, device).items():
            out[k] = [p.resize_on_device(full) for p in preprocesses]
    for k, item in enumerate(items):
        if out[k] is not None:
            continue
        if isinstance(item, EncodedJpeg):  # the device could not decode it: the CPU decides
            try:
                item = cpu_pixels(item.data.tobytes(), item.name, limits, preprocesses)
            except ImageLoadError as err:
                out[k] = err
                continue
        out[k] = [t.to(device, non_blocking=True).float() for t in item]
    return out
