"""Batch API request files: one /v1/chat/completions line per catalog row, split under the API's limits.

A line asks a vision-language model for the row's clean title and one value per attribute of the
vocabulary, each from that attribute's values or "unknown", with a confidence, through a strict JSON
schema (structured outputs), so the answer parses without guessing. Images travel inline as resized
JPEG data URLs: the Batch API fetches nothing, and a 512-pixel side is what a VLM looks at anyway.
"""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from PIL import Image

from clip_arena.analyzer.images import load_image
from clip_arena.core.settings import FetchLimits

ENDPOINT = "/v1/chat/completions"
UNKNOWN = "unknown"
IMAGE_SIDE = 512
JPEG_QUALITY = 90
SCHEMA_NAME = "catalog_attributes"
SYSTEM_PROMPT = (
    "You label product catalog entries for training an image-text model. Look at the image and the raw "
    "title. Give a short clean product title (no marketing noise, SKU codes or shouting), and for each "
    "attribute the one listed value that best fits what the image shows, or \"unknown\" when none fits or "
    "you cannot tell. Each confidence is your probability, from 0 to 1, that the value is right."
)


@dataclass(frozen=True)
class FileLimits:
    """Caps on one request file. The API allows 100 MB and 50,000 requests; the defaults keep a
    margin so a file is never refused for a few bytes of multipart framing."""

    max_bytes: int = 90_000_000
    max_requests: int = 45_000

    def __post_init__(self):
        if self.max_bytes < 1 or self.max_requests < 1:
            raise ValueError("request file limits must be positive")


def confidence_key(attribute: str) -> str:
    return f"{attribute}_confidence"


def answer_schema(vocab: Mapping[str, Sequence[str]]) -> dict:
    """The JSON schema of one answer. Strict mode wants every property required and no extras."""
    properties: dict = {"clean_title": {"type": "string"}}
    for attribute, values in vocab.items():
        choices = list(dict.fromkeys([*map(str, values), UNKNOWN]))
        properties[attribute] = {"type": "string", "enum": choices}
        properties[confidence_key(attribute)] = {"type": "number"}
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def image_data_url(source, image_limits: FetchLimits | None = None, side: int = IMAGE_SIDE) -> str:
    """The image as a JPEG data URL, its longest side at most `side` (never enlarged).
    Raises ImageLoadError (a sentence) when the image cannot be read."""
    image = load_image(source, image_limits, target_size=side)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def request_line(custom_id: str, title: str, image_url: str, vocab: Mapping[str, Sequence[str]],
                 model: str) -> dict:
    listing = "\n".join(f"- {a}: {', '.join(map(str, v))}" for a, v in vocab.items())
    text = f"Raw title: {title}\nAttributes and their values:\n{listing}"
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": ENDPOINT,
        "body": {
            "model": model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": [
                    {"type": "text", "text": text},
                    {"type": "image_url", "image_url": {"url": image_url}},
                ]},
            ],
            "response_format": {"type": "json_schema", "json_schema": {
                "name": SCHEMA_NAME, "strict": True, "schema": answer_schema(vocab)}},
        },
    }


def encode_line(line: dict) -> bytes:
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


class LineTooLarge(ValueError):
    """One request alone is over the per-file byte cap."""


def write_request_files(lines: Iterable[tuple[str, bytes]], folder: Path, names: Iterator[str],
                        limits: FileLimits = FileLimits()) -> list[tuple[str, Path, list[str]]]:
    """Write (custom_id, encoded line) pairs into as few .jsonl files as the limits allow, in order.
    Each file is written whole then renamed into place, so a kill never leaves half a file that a
    resume would take for a whole one. `names` yields the file stems. Returns (name, path, ids) per
    file. A line over max_bytes on its own raises LineTooLarge naming its custom_id."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path, list[str]]] = []
    chunk: list[bytes] = []
    ids: list[str] = []
    size = 0

    def flush():
        nonlocal chunk, ids, size
        if not chunk:
            return
        name = next(names)
        path = folder / f"{name}.requests.jsonl"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:
            handle.writelines(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        written.append((name, path, ids))
        chunk, ids, size = [], [], 0

    for custom_id, data in lines:
        if len(data) > limits.max_bytes:
            raise LineTooLarge(f"The request for row {custom_id} is {len(data):,} bytes, over the "
                               f"{limits.max_bytes:,}-byte cap of one request file.")
        if len(chunk) >= limits.max_requests or size + len(data) > limits.max_bytes:
            flush()
        chunk.append(data)
        ids.append(custom_id)
        size += len(data)
    flush()
    return written


def read_request_lines(path: Path) -> dict[str, bytes]:
    """custom_id -> its encoded line, from a request file this module wrote (for retries)."""
    found: dict[str, bytes] = {}
    with open(path, "rb") as handle:
        for data in handle:
            if data.strip():
                found[json.loads(data)["custom_id"]] = data if data.endswith(b"\n") else data + b"\n"
    return found
