"""The work of each stage on one part of the rows, as plain functions of records: the local engine
calls them in this process, the Ray engine in its workers (clip_arena.prepare.ray_engine), so both
write the same rows.

Images go through the project's one image-source policy: local paths only under the image roots
(`..` and links leaving them refused), URLs fetched with the SSRF, size and time caps of
analyzer.fetch; a fetched image is kept under OUT/images so later stages (and `embed`) read a file."""

from __future__ import annotations

import functools
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clip_arena.analyzer.fetch import fetch_bytes, is_url
from clip_arena.analyzer.images import decode_image, load_image, read_regular_file, resolve_under_roots
from clip_arena.core.errors import ImageLoadError
from clip_arena.core.settings import FetchLimits
from clip_arena.prepare.clean import clean_title, image_facts

HASH_SIZE = 128  # JPEGs are decoded reduced in the DCT to this; pHash looks at 32x32
THREADS = 8  # fetching and decoding wait on disk and network more than on the CPU


@dataclass(frozen=True)
class Context:
    """What a part's work needs, picklable for Ray's workers."""

    roots: tuple[str, ...]  # local image paths must stay under these
    fetched: str  # OUT/images: URL images kept as files
    limits: FetchLimits = field(default_factory=FetchLimits)

    @property
    def read_roots(self) -> list[str]:
        return [*self.roots, self.fetched]


def _header(data: bytes) -> tuple[str, int, int]:
    """(file suffix, width, height) from the image's header (decoding may have been reduced)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        suffix = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}.get(image.format, ".img")
        return suffix, image.size[0], image.size[1]


def _checked(record: dict, ctx: Context) -> dict:
    out = {"image_uri": "", "sha256": "", "phash": "", "width": 0, "height": 0, "error_kind": "", "error": ""}
    cell = record.get("source_uri", "").strip()
    try:
        if not record.get("image_id"):
            raise ImageLoadError("bad_id", "The row has no id.")
        if not cell:
            raise ImageLoadError("missing", "The row has no image.")
        if cell[:5].lower() == "data:":  # else it would be looked for as a file, and "not found"
            raise ImageLoadError("bad_scheme", "data: URIs are not read; give the image as a file or an "
                                               "http(s) URL.")
        if is_url(cell):
            data, name, real = fetch_bytes(cell, ctx.limits), cell[:120], None
        else:
            real = resolve_under_roots(cell, ctx.roots)
            data, name = read_regular_file(real, cell[:120], ctx.limits), cell[:120]
        image = decode_image(data, name, ctx.limits, HASH_SIZE)
        facts = image_facts(data, image)
        suffix, width, height = _header(data)
        if real is None:  # a fetched image: kept as a file named by its content
            real = Path(ctx.fetched) / f"{facts.sha256[:32]}{suffix}"
            if not real.exists():
                tmp = real.with_name(f"{real.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, real)
        out.update(image_uri=str(real), sha256=facts.sha256, phash=f"{facts.phash:016x}", width=width,
                   height=height)
    except ImageLoadError as err:
        hint = " Give its folder with --image-root DIR." if err.kind == "outside_roots" else ""
        out.update(error_kind=err.kind, error=str(err) + hint)
    except (OSError, ValueError) as err:  # anything else about one row is that row's problem, not the run's
        out.update(error_kind="not_readable", error=f"{cell[:120]} could not be read ({type(err).__name__}).")
    return out


def clean_part(records: list[dict], ctx: Context) -> list[dict]:
    """Each record with its clean title and its image checked: image_uri (a local file), sha256, pHash,
    size, or error_kind and error."""
    Path(ctx.fetched).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(THREADS) as pool:
        checked = list(pool.map(lambda r: _checked(r, ctx), records))
    return [{**r, "clean_title": clean_title(r.get("title")), **c} for r, c in zip(records, checked)]


def load_images(uris: list[str], ctx: Context, target_size: int | None = None) -> list:
    """RGB images (or ImageLoadError for one that went bad since the clean stage), in order."""
    def one(uri):
        try:
            return load_image(uri, ctx.limits, ctx.read_roots, target_size)
        except ImageLoadError as err:
            return err

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, uris))


def attribute_worker(model: str, device: str | None, precision: str | None, vocab: dict, min_confidence: float,
                     ctx: Context):
    """The function that does an attributes part: the model loaded, the vocabulary's text encoded, once."""
    from clip_arena.models import get_encoder
    from clip_arena.prepare.attributes import ZeroShot

    encoder = get_encoder(model, device, precision)
    zero_shot = ZeroShot(encoder, vocab, min_confidence)
    return functools.partial(attributes_part, ctx=ctx, zero_shot=zero_shot, encoder=encoder)


def attributes_part(records: list[dict], ctx: Context, zero_shot, encoder) -> list[dict]:
    """The zero-shot attribute columns for each record ({"error": ...} for an image gone bad)."""
    size = getattr(encoder.preprocess, "size", None)
    images = load_images([r["image_uri"] for r in records], ctx, size)
    good = [i for i, im in enumerate(images) if not isinstance(im, ImageLoadError)]
    embeddings = encoder.encode_images([images[i] for i in good]) if good else np.empty((0, encoder.dim), np.float32)
    columns = zero_shot(embeddings)
    out = [{"image_id": r["image_id"], "error": str(im) if isinstance(im, ImageLoadError) else ""}
           for r, im in zip(records, images)]
    for k, i in enumerate(good):
        out[i].update({name: values[k] for name, values in columns.items()})
    return out


def sample_part(records: list[dict], ctx: Context, size: int, template: str) -> list[dict | None]:
    """WebDataset samples for the records (None for an image gone bad since the clean stage)."""
    from clip_arena.prepare.shards import sample

    images = load_images([r["image_uri"] for r in records], ctx, size)  # JPEGs reduced in the DCT, to >= size
    return [None if isinstance(im, ImageLoadError) else sample(r, im, size, template) for r, im in zip(records, images)]
