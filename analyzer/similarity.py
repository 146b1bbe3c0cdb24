"""Single image, several captions -> scores, ranked, each with its percentile among mismatched
pairs (the same image against generic captions that do not describe it) to help read it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from clip_arena.analyzer.scores import scores_from_cosine
from clip_arena.core.errors import UserError
from clip_arena.core.settings import ASSETS_DIR

REFERENCE_CAPTIONS_FILE = ASSETS_DIR / "reference_captions.txt"


@lru_cache(maxsize=1)
def reference_captions() -> tuple[str, ...]:
    lines = REFERENCE_CAPTIONS_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=8)
def reference_vectors(encoder):
    """The generic captions' embeddings, once per encoder (not on every click)."""
    return encoder.encode_texts(list(reference_captions()))


def split_captions(text: str) -> list[str]:
    """One caption per non-empty line."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


@dataclass
class SimilarityResult:
    text: str
    cosine: float
    similarity: float
    clip_score: float
    percentile: float  # share of generic captions that score below this one, in %

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def percentile_among_references(encoder, image_vec: np.ndarray, cosine: float) -> float:
    """The share (in %) of generic captions whose cosine with this image is below `cosine`."""
    reference = reference_vectors(encoder) @ image_vec
    return round(100.0 * float(np.mean(reference < cosine)), 1)


def score_image_texts(encoder, image: Image.Image | None, texts: list[str],
                      image_vec: np.ndarray | None = None) -> list[SimilarityResult]:
    """Scores of `image` (or its embedding `image_vec`, when already computed) against each text,
    best first."""
    texts = [t for t in (t.strip() for t in texts) if t]
    if not texts:
        raise UserError("Give at least one caption (one per line).")
    if image_vec is None:
        image_vec = encoder.encode_images([image])[0]
    text_vecs = encoder.encode_texts(texts)
    results = []
    for text, vec in zip(texts, text_vecs):
        cosine = float(vec @ image_vec)
        percentile = percentile_among_references(encoder, image_vec, cosine)
        results.append(SimilarityResult(text=text, percentile=percentile, **scores_from_cosine(cosine)))
    return sorted(results, key=lambda r: r.cosine, reverse=True)
