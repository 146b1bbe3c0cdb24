"""Searching a catalog by a free text or an image, with each method's own model, as clip-retrieval's
front end does: the query is embedded by the model that made the method's vectors (the spec in the
catalog's file metadata), then looked up in that method's index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from clip_arena.core.errors import UserError
from clip_arena.index.search import Searcher

MAX_K = 50


@dataclass(frozen=True)
class Hit:
    row: int
    image_id: str
    score: float

    def as_dict(self) -> dict:
        return {"image_id": self.image_id, "score": self.score}


def method_spec(searcher: Searcher, method: str) -> str:
    """The model spec that produced a method's vectors, from the catalog's file metadata."""
    if method not in searcher.indices:
        raise UserError(f"The catalog has no method {method!r}; it has {', '.join(searcher.indices)}.")
    spec = searcher.catalog.meta.get("methods", {}).get(method, {}).get("spec")
    if not spec:
        raise UserError(f"The catalog does not say which model made method {method!r}, so it cannot embed "
                        "a text or image query for it; rebuild it with `clip-arena embed`.")
    from clip_arena.models.spec import resolve_saved_spec

    return resolve_saved_spec(spec, searcher.catalog.folder)


def _encoder(searcher: Searcher, method: str, device: str | None = None, precision: str | None = None):
    from clip_arena.models import get_encoder

    return get_encoder(method_spec(searcher, method), device, precision)


def _check_k(k: int) -> int:
    if not 1 <= int(k) <= MAX_K:
        raise UserError(f"The number of results must be between 1 and {MAX_K}.")
    return int(k)


def search_vector(searcher: Searcher, method: str, vector: np.ndarray, k: int) -> list[Hit]:
    scores, rows = searcher.indices[method].search(vector, _check_k(k))
    ids = searcher.catalog.table.column("image_id")
    return [Hit(int(r), ids[int(r)].as_py(), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]


def search_text(searcher: Searcher, method: str, text: str, k: int = 8, device: str | None = None,
                precision: str | None = None) -> list[Hit]:
    text = (text or "").strip()
    if not text:
        raise UserError("Type a text to search for.")
    vector = _encoder(searcher, method, device, precision).encode_texts([text])[0]
    return search_vector(searcher, method, vector, k)


def search_image(searcher: Searcher, method: str, image: Image.Image, k: int = 8, device: str | None = None,
                 precision: str | None = None) -> list[Hit]:
    vector = _encoder(searcher, method, device, precision).encode_images([image])[0]
    return search_vector(searcher, method, vector, k)


def search_all(searcher: Searcher, methods: list[str], text: str = "", image: Image.Image | None = None,
               k: int = 8, device: str | None = None, precision: str | None = None) -> dict[str, list[Hit]]:
    """Each method's results for one query: a text, or else an image."""
    if not methods:
        raise UserError("Pick at least one method.")
    if not (text or "").strip() and image is None:
        raise UserError("Type a text or add an image to search for.")
    if (text or "").strip():
        return {m: search_text(searcher, m, text, k, device, precision) for m in methods}
    return {m: search_image(searcher, m, image, k, device, precision) for m in methods}
