"""The shards stage: WebDataset tar shards, one folder per split, written with webdataset's ShardWriter.

Each sample: `__key__` (the image id, made tar-safe), `jpg` (the image resized to fit the model's
input and padded to a square, quality 95), `txt` (the caption from a template), `json` (every catalog
column of the row: clean title, attributes and their confidences, split, ...). A shard holds at most
`max_count` samples and `max_size` bytes (the tar file on disk, headers and padding included; a single
sample larger than that goes alone). Tar members carry mtime 0, so the same rows give the same bytes."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import string
from pathlib import Path
from typing import Callable, Iterable

from PIL import Image

from clip_arena.core.errors import UserError

DEFAULT_TEMPLATE = "{clean_title}, {style} {material} {object_type} in {colour}"
DEFAULT_MAX_COUNT = 1000
DEFAULT_MAX_SIZE = 500 * 1000 * 1000
MIN_MAX_SIZE = 64 * 1024
JPEG_QUALITY = 95
PAD = (255, 255, 255)  # catalog photos sit on white
SHARD_NAME = "shard-%06d.tar"
_BLOCK, _RECORD = 512, 10240  # tar's block, and the record Python's tarfile pads an archive to
_CONNECTORS = r"(?:in|of|made of|with|and|for|by)"
_SAFE_KEY = re.compile(r"[^A-Za-z0-9_-]+")


def letterbox(image: Image.Image, size: int) -> Image.Image:
    """The whole image, longest side `size` (Lanczos), centred on a white size x size square: nothing
    is cropped away, so the caption's object stays in the picture."""
    width, height = image.size
    scale = size / max(width, height)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = image.convert("RGB").resize(new, Image.Resampling.LANCZOS) if new != image.size else image.convert("RGB")
    canvas = Image.new("RGB", (size, size), PAD)
    canvas.paste(resized, ((size - new[0]) // 2, (size - new[1]) // 2))
    return canvas


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)  # 4:4:4: product colours stay sharp
    return buffer.getvalue()


def check_template(template: str, columns: Iterable[str]) -> None:
    """Refused before any work: a field the catalog does not have, or a field with a format spec."""
    known = set(columns)
    try:
        parsed = [(field, conversion, spec) for _, field, spec, conversion in string.Formatter().parse(template)
                  if field is not None]
    except ValueError as err:
        raise UserError(f"--caption-template {template[:80]!r} is not a valid template: {err}.") from None
    for field, conversion, spec in parsed:
        if not field or not re.fullmatch(r"\w+", field) or conversion or spec:
            raise UserError(f"--caption-template fields are plain column names in braces, e.g. {{clean_title}}; "
                            f"{field!r} is not one.")
        if field not in known:
            raise UserError(f"--caption-template names {{{field}}}, which the catalog does not have; it has "
                            f"{', '.join(sorted(known))[:300]}.")


def caption(template: str, row: dict) -> str:
    """The template filled from the row; "unknown" and empty parts are dropped with the little word that
    led to them ("in unknown" -> ""), and the punctuation left dangling is tidied."""
    hole = "\x00"

    def value(field: str) -> str:
        v = row.get(field)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return hole
        text = " ".join(str(v).split())
        return hole if not text or text == "unknown" else text

    filled = "".join(lit + ("" if field is None else value(field))
                     for lit, field, _, _ in string.Formatter().parse(template))
    filled = re.sub(rf"\b{_CONNECTORS}\s+{hole}", hole, filled)
    # A connector whose clause has nothing before it but empty fields leads nowhere: ", in purple" -> ", purple".
    filled = re.sub(rf"((?:^|[,;:])(?:\s*{hole})+\s*){_CONNECTORS}\s+", r"\1", filled)
    filled = filled.replace(hole, " ")
    filled = re.sub(r"\s+([,;:.!?])", r"\1", " ".join(filled.split()))
    filled = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", filled)
    filled = re.sub(rf"\s+{_CONNECTORS}$", "", filled)
    return filled.strip(" ,;:-")


def sample_key(image_id: str) -> str:
    """A tar-safe, unique key: the id when it is plain, else its plain part and a short hash of it
    (webdataset splits names at the first dot, and tar names are bounded)."""
    safe = _SAFE_KEY.sub("_", image_id)[:60].strip("_")
    if safe == image_id and safe:
        return safe
    return f"{safe or 'id'}-{hashlib.sha256(image_id.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


def sample(row: dict, image: Image.Image, size: int, template: str) -> dict:
    meta = {k: _json_safe(v) for k, v in row.items()}
    return {"__key__": sample_key(str(row["image_id"])), "jpg": jpeg_bytes(letterbox(image, size)),
            "txt": caption(template, row).encode("utf-8"),
            "json": json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")}


def _member_bytes(payload: bytes) -> int:
    return _BLOCK + -(-len(payload) // _BLOCK) * _BLOCK


def sample_bytes(obj: dict) -> int:
    """What a sample adds to a tar file: a header block per member, data padded to blocks."""
    return sum(_member_bytes(v) for k, v in obj.items() if not k.startswith("_"))


def _file_bytes(content: int) -> int:
    """A tar file's size on disk for `content` bytes of members: two end blocks, padded to a record."""
    return -(-(content + 2 * _BLOCK) // _RECORD) * _RECORD


def _shard_writer_class():
    import webdataset as wds

    class CappedShardWriter(wds.ShardWriter):
        """ShardWriter opening the next shard *before* a sample would take the file past maxsize
        (its own check is after, so a shard could end one sample over)."""

        def write(self, obj):
            need = sample_bytes(obj)
            if self.tarstream is None or self.count >= self.maxcount or (
                    self.count and _file_bytes(self.size + need) > self.maxsize):
                self.next_stream()
            self.tarstream.write(obj)
            self.count += 1
            self.total += 1
            self.size += need

    return CappedShardWriter


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Samples are written in a seeded hash order of their ids (a new order: older shard folders are redone).
ORDER = "hash-of-id"


def in_shard_order(rows: list[dict], seed: int) -> list[dict]:
    """A split's rows in the order they are written: a seeded hash of each id. A catalog's own order is
    often by category, and a streaming reader's shuffle buffer holds a window of the stream, so sorted
    shards would give it batches of a few categories at a time (WebDataset's advice: shuffle before
    writing). A hash order is a seeded shuffle that leaves the other rows' order as it was when rows
    are added, and both engines write the same files."""
    from clip_arena.index.split import hash_rank  # here: it loads pandas, which a shard worker needs not

    return sorted(rows, key=lambda row: hash_rank(f"shard:{seed}:{row['image_id']}"))


def write_shards(samples: Iterable[dict], folder: Path, max_count: int = DEFAULT_MAX_COUNT,
                 max_size: int = DEFAULT_MAX_SIZE, progress: Callable[[int], None] | None = None) -> list[dict]:
    """Samples -> folder/shard-NNNNNN.tar; returns [{name, samples, bytes, sha256}] in order.
    An empty split writes no shard."""
    check_limits(max_count, max_size)
    folder.mkdir(parents=True, exist_ok=True)
    counts: list[int] = []
    writer = None
    written = 0
    for obj in samples:
        if writer is None:
            writer = _shard_writer_class()(str(folder / SHARD_NAME), maxcount=max_count, maxsize=max_size,
                                           verbose=0, mtime=0)  # opens shard 0
            counts.append(0)
        before = writer.shard
        writer.write(obj)
        if writer.shard != before:
            counts.append(0)
        counts[-1] += 1
        written += 1
        if progress:
            progress(written)
    if writer is not None:
        writer.close()
    shards = []
    for number, count in enumerate(counts):
        path = folder / (SHARD_NAME % number)
        shards.append({"name": path.name, "samples": count, "bytes": path.stat().st_size, "sha256": sha256_file(path)})
    return shards


def check_limits(max_count: int, max_size: int) -> None:
    if max_count < 1:
        raise UserError(f"--shard-count {max_count} must be at least 1 sample per shard.")
    if max_size < MIN_MAX_SIZE:
        raise UserError(f"--shard-size {max_size} bytes is too small; at least {MIN_MAX_SIZE:,} bytes.")
