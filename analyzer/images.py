"""Safe image loading shared by every tab: a path, a URL, bytes or a PIL image in,
an RGB PIL image out, or an ImageLoadError whose message says what was wrong.

Which sources are allowed (roots, local paths on or off, how errors name things) is decided by
analyzer.policy.ImagePolicy; this module holds the mechanics every source goes through.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence, Union

from PIL import Image, ImageOps, UnidentifiedImageError

from clip_arena.analyzer.fetch import fetch_bytes, is_url
from clip_arena.core.errors import ImageLoadError
from clip_arena.core.settings import FetchLimits
from clip_arena.core.sizes import human_bytes

ImageSource = Union[str, os.PathLike, bytes, Image.Image]
MAX_PATH_CHARS = 4096


def _short(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def resolve_under_roots(path: str | os.PathLike, roots: Sequence[str | os.PathLike]) -> Path:
    """A relative path is taken under each root in turn; the real path (links followed) must stay
    inside a root, so `..` and symlinks cannot reach the rest of the disk. A path outside the
    roots is refused before anything about it is looked up, so the answer says nothing about it."""
    name = _short(os.fspath(path))
    try:
        raw = Path(path)
        candidates = [raw] if raw.is_absolute() else [Path(r) / raw for r in roots]
        real_roots = [Path(r).resolve() for r in roots]
        for candidate in candidates:
            real = candidate.resolve()
            if not any(real == root or real.is_relative_to(root) for root in real_roots):
                raise ImageLoadError("outside_roots", f"Path {name} is outside the allowed image folders.")
            if real.exists():
                return real
    except (ValueError, OSError) as err:  # NUL bytes, names too long, loops of links
        raise ImageLoadError("bad_path", f"{name!r} is not a usable file path.") from err
    raise not_found(os.fspath(path), under_roots=True)


def not_found(text: str, under_roots: bool) -> ImageLoadError:
    """A missing image, worded for what the user gave: a file's path, a web address without its
    scheme, or words that are neither a path nor a URL."""
    name, where = _short(text), " under the image folders" if under_roots else ""
    first = text.replace("\\", "/").split("/")[0]
    if re.fullmatch(r"(www\.)?[\w-]+(\.[\w-]+)*\.[a-z]{2,}", first, re.I) and "/" in text.replace("\\", "/"):
        return ImageLoadError("not_found", f"Image file {name} was not found{where}; a web address starts "
                                           "with https://.")
    if "/" in text or "\\" in text or re.search(r"\.[A-Za-z0-9]{2,5}$", text):
        return ImageLoadError("not_found", f"Image file {name} " + (f"was not found{where}." if under_roots
                                                                      else "does not exist."))
    return ImageLoadError("not_found", f"{name!r} is neither an image URL (http:// or https://) nor an image "
                                       f"file{where}.")


def open_regular(real: Path, name: str, max_bytes: int, noun: str = "image", error=ImageLoadError,
                 cap: str = "cap") -> tuple[int, int]:
    """(an open descriptor, its size) of a regular file of at most max_bytes: devices, FIFOs and
    folders refused, checked on the opened file so that it cannot be swapped between the check and
    the read. Errors are `error(kind, sentence)` about "the `noun` file" (images, videos)."""
    article = "an" if noun[0] in "aeiou" else "a"
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as err:
        raise error("not_found", f"{noun.capitalize()} file {name} does not exist.") from err
    except IsADirectoryError as err:
        raise error("not_a_file", f"{name} is a folder, not {article} {noun} file.") from err
    except PermissionError as err:
        raise error("not_readable", f"{noun.capitalize()} file {name} cannot be read (permission denied).") from err
    except (ValueError, OSError) as err:
        if isinstance(err, OSError) and err.errno == errno.ENAMETOOLONG:
            raise error("bad_path", f"The file name {name} is too long.") from err
        raise error("bad_path", f"{name!r} is not a usable file path.") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise error("not_a_file", f"{name} is {kind}, not {article} {noun} file.")
        if info.st_size > max_bytes:
            raise error("too_large", f"{name} is {human_bytes(info.st_size)}, over the {human_bytes(max_bytes)} {cap}.")
    except BaseException as err:
        os.close(fd)
        if isinstance(err, OSError):
            raise error("not_readable", f"{noun.capitalize()} file {name} could not be read.") from err
        raise
    return fd, info.st_size


def read_regular_file(real: Path, name: str, limits: FetchLimits) -> bytes:
    """The bytes of a regular file (open_regular), at most limits.max_bytes."""
    fd, _ = open_regular(real, name, limits.max_bytes)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limits.max_bytes + 1)
        if len(data) > limits.max_bytes:
            raise ImageLoadError("too_large", f"{name} is over the {human_bytes(limits.max_bytes)} cap.")
        return data
    except OSError as err:
        raise ImageLoadError("not_readable", f"Image file {name} could not be read.") from err
    finally:
        os.close(fd)


def _read_local(path: str | os.PathLike, limits: FetchLimits, roots) -> bytes:
    name = _short(os.fspath(path))
    if len(os.fspath(path)) > MAX_PATH_CHARS:
        raise ImageLoadError("bad_path", f"The path {name} is too long.")
    try:
        real = resolve_under_roots(path, roots) if roots is not None else Path(path).expanduser()
    except (ValueError, RuntimeError) as err:
        raise ImageLoadError("bad_path", f"{name!r} is not a usable file path.") from err
    try:
        return read_regular_file(real, name, limits)
    except ImageLoadError as err:
        if err.kind == "not_found":
            raise not_found(os.fspath(path), under_roots=roots is not None) from err
        raise


class PixelBudget:
    """Bounds the pixels being decoded at once across threads; an image larger than the whole
    budget still goes, alone."""

    def __init__(self, capacity: int):
        self.capacity, self.used = capacity, 0
        self.cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int):
        if self.capacity <= 0:
            yield
            return
        with self.cond:
            self.cond.wait_for(lambda: self.used == 0 or self.used + pixels <= self.capacity)
            self.used += pixels
        try:
            yield
        finally:
            with self.cond:
                self.used -= pixels
                self.cond.notify_all()


_budgets: dict[int, PixelBudget] = {}
_budgets_lock = threading.Lock()


def pixel_budget(capacity: int) -> PixelBudget:
    """One process-wide budget per capacity, shared by every batch and tab."""
    with _budgets_lock:
        return _budgets.setdefault(capacity, PixelBudget(capacity))


def decode_image(data: bytes | Image.Image, name: str, limits: FetchLimits, target_size: int | None = None,
                 then: Callable[[Image.Image], object] | None = None):
    """Bytes or an opened image -> RGB: EXIF orientation applied, first frame of animations,
    alpha composited on white, CMYK/P/L/I converted; pixel count capped before decoding.
    `target_size`: a JPEG is decoded reduced in the DCT (1/2 to 1/8) to no less than that many
    pixels a side, which is all a model needs. `then(image)` runs while the pixels are held in
    the decode budget, and its result is returned instead of the image."""
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
        if target_size and image.format == "JPEG":
            image.draft("RGB", (target_size, target_size))
        decoded = image.size[0] * image.size[1]
        with pixel_budget(limits.decode_pixels).hold(decoded):
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image.load()
                image = ImageOps.exif_transpose(image)
            image = _to_rgb(image)
            return then(image) if then else image
    except ImageLoadError:
        raise
    except UnidentifiedImageError as err:
        raise ImageLoadError("not_image", f"{name} is not an image file that can be read.") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError("too_many_pixels", f"{name} is too large to decode safely.") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        if "truncated" in str(err).lower():
            raise ImageLoadError("truncated", f"{name} is truncated (the file ends early).") from err
        raise ImageLoadError("corrupt", f"{name} could not be decoded as an image.") from err


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
               image_roots: Sequence[str | os.PathLike] | None = None, target_size: int | None = None,
               then: Callable[[Image.Image], object] | None = None):
    """Load any supported source as an RGB image. `image_roots`, when given, confines local
    paths to those folders. Tabs and commands go through analyzer.policy.ImagePolicy, which
    also decides whether local paths are allowed at all; this is for trusted callers (a catalog)."""
    limits = limits or FetchLimits()
    if isinstance(source, Image.Image):
        return decode_image(source, "the uploaded image", limits, target_size, then)
    data, name = read_source(source, limits, image_roots)
    return decode_image(data, name, limits, target_size, then)


def read_source(source: str | os.PathLike | bytes, limits: FetchLimits,
                image_roots: Sequence[str | os.PathLike] | None = None) -> tuple[bytes, str]:
    """(the file's bytes, its name for messages): the reading half of load_image, with the same
    caps and roots, for decoders that are not PIL (the GPU's)."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), "the uploaded image"
    text = os.fspath(source).strip()
    if not text:
        raise ImageLoadError("missing", "No image was given.")
    name = _short(text)
    if is_url(text):
        return fetch_bytes(text, limits), name
    return _read_local(text, limits, image_roots), name
