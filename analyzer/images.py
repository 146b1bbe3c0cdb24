"""Safe image loading shared by every tab: a path, a URL, bytes or a PIL image in,
an RGB PIL image out, or an ImageLoadError whose message says what was wrong."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Sequence, Union

from PIL import Image, ImageOps, UnidentifiedImageError

from analyzer.fetch import fetch_bytes, is_url
from core.errors import ImageLoadError
from core.settings import FetchLimits

ImageSource = Union[str, os.PathLike, bytes, Image.Image]


def resolve_under_roots(path: str | os.PathLike, roots: Sequence[str | os.PathLike]) -> Path:
    """A relative path is taken under each root in turn; the real path (links followed) must stay
    inside a root, so `..` and symlinks cannot reach the rest of the disk."""
    raw = Path(path)
    candidates = [raw] if raw.is_absolute() else [Path(r) / raw for r in roots]
    real_roots = [Path(r).resolve() for r in roots]
    for candidate in candidates:
        real = candidate.resolve()
        if any(real == root or real.is_relative_to(root) for root in real_roots):
            if real.exists():
                return real
        else:
            raise ImageLoadError("outside_roots", f"Path {path} leads outside the allowed image folders.")
    raise ImageLoadError("not_found", f"Image file {path} was not found under the image folders.")


def _read_local(path: str | os.PathLike, limits: FetchLimits, roots) -> bytes:
    real = resolve_under_roots(path, roots) if roots is not None else Path(path).expanduser()
    try:
        size = real.stat().st_size
        if size > limits.max_bytes:
            raise ImageLoadError("too_large", f"{path} is {size:,} bytes, over the {limits.max_bytes:,}-byte cap.")
        return real.read_bytes()
    except FileNotFoundError as err:
        raise ImageLoadError("not_found", f"Image file {path} does not exist.") from err
    except IsADirectoryError as err:
        raise ImageLoadError("not_found", f"{path} is a folder, not an image file.") from err
    except PermissionError as err:
        raise ImageLoadError("not_found", f"Image file {path} cannot be read (permission denied).") from err


def decode_image(data: bytes | Image.Image, name: str, limits: FetchLimits) -> Image.Image:
    """Bytes or an opened image -> RGB: EXIF orientation applied, first frame of animations,
    alpha composited on white, CMYK/P/L/I converted; pixel count capped before decoding."""
    try:
        image = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageLoadError(
                "too_many_pixels",
                f"{name} is {width}x{height} pixels, over the {limits.max_pixels:,}-pixel cap.",
            )
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except ImageLoadError:
        raise
    except UnidentifiedImageError as err:
        raise ImageLoadError("not_image", f"{name} is not an image file PIL can read.") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError("too_many_pixels", f"{name} is too large to decode safely ({err}).") from err
    except (OSError, SyntaxError, ValueError) as err:
        if "truncated" in str(err).lower():
            raise ImageLoadError("truncated", f"{name} is truncated (the file ends early).") from err
        raise ImageLoadError("corrupt", f"{name} could not be decoded: {err}.") from err


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale into 8 bits instead of clipping to white.
        image = image.point(lambda v: v / 256).convert("L")
    return image.convert("RGB") if image.mode != "RGB" else image


def load_image(source: ImageSource, limits: FetchLimits | None = None,
               image_roots: Sequence[str | os.PathLike] | None = None) -> Image.Image:
    """Load any supported source as an RGB image. `image_roots`, when given, confines local
    paths to those folders (used for CSV rows, which come from someone else)."""
    limits = limits or FetchLimits()
    if isinstance(source, Image.Image):
        return decode_image(source, "the uploaded image", limits)
    if isinstance(source, (bytes, bytearray)):
        return decode_image(bytes(source), "the uploaded image", limits)
    text = os.fspath(source).strip()
    if not text:
        raise ImageLoadError("missing", "No image was given.")
    if is_url(text):
        return decode_image(fetch_bytes(text, limits), text, limits)
    return decode_image(_read_local(text, limits, image_roots), text, limits)
