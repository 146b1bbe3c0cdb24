"""Single image, several captions -> scores, ranked, each with its percentile among mismatched
pairs to help read it: by default the same image against generic captions that do not describe it;
for a calibrated model, among the calibration's mismatched pairs, with the calibrated probability of
a match beside it (models.calibration). A fusion of calibrated models is scored by its probability."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from clip_arena.models.per_encoder import per_encoder
from clip_arena.analyzer.scores import scores_from_cosine
from clip_arena.core.errors import UserError
from clip_arena.core.settings import ASSETS_DIR

REFERENCE_CAPTIONS_FILE = ASSETS_DIR / "reference_captions.txt"


@lru_cache(maxsize=1)
def reference_captions() -> tuple[str, ...]:
    lines = REFERENCE_CAPTIONS_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@per_encoder
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
    percentile: float  # share of mismatched captions that score below this one, in %
    probability: float | None = None  # calibrated probability of a match; None: the model is not calibrated

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def percentile_among_references(encoder, image_vec: np.ndarray, cosine: float) -> float:
    """The share (in %) of generic captions whose cosine with this image is below `cosine`."""
    reference = reference_vectors(encoder) @ image_vec
    return round(100.0 * float(np.mean(reference < cosine)), 1)


def _clean(texts: list[str]) -> list[str]:
    texts = [t for t in (t.strip() for t in texts) if t]
    if not texts:
        raise UserError("Give at least one caption (one per line).")
    return texts


def score_image_texts(encoder, image: Image.Image | None, texts: list[str],
                      image_vec: np.ndarray | None = None, calibration=None) -> list[SimilarityResult]:
    """Scores of `image` (or its embedding `image_vec`, when already computed) against each text,
    best first. With a `calibration` (made for this encoder), each result also has its calibrated
    probability, and its percentile is among the calibration's mismatched pairs."""
    texts = _clean(texts)
    if calibration is not None:
        calibration.check(encoder)  # refused for another model's weights (the fingerprint is cached)
    if image_vec is None:
        image_vec = encoder.encode_images([image])[0]
    cosines = np.array([float(vec @ image_vec) for vec in encoder.encode_texts(texts)])  # as before: one dot each
    if calibration is not None:
        probabilities, percentiles = calibration.probability(cosines), calibration.percentile(cosines)
    results = []
    for i, (text, cosine) in enumerate(zip(texts, cosines)):
        cosine = float(cosine)
        if calibration is None:
            percentile, probability = percentile_among_references(encoder, image_vec, cosine), None
        else:
            percentile, probability = round(float(percentiles[i]), 1), float(probabilities[i])
        results.append(SimilarityResult(text=text, percentile=percentile, probability=probability,
                                        **scores_from_cosine(cosine)))
    return sorted(results, key=lambda r: r.cosine, reverse=True)


def score_fused(fusion, image: Image.Image, texts: list[str]) -> list[SimilarityResult]:
    """Scores of `image` against each text by a fusion of calibrated models (models.fusion): the fused
    probability and percentile; a fusion has no cosine of its own (NaN). Best first by probability."""
    texts = _clean(texts)
    probabilities, percentiles = fusion.scores(image, texts)
    nan = float("nan")
    results = [SimilarityResult(text=t, cosine=nan, similarity=nan, clip_score=nan, percentile=round(float(pc), 1),
                                probability=float(p)) for t, p, pc in zip(texts, probabilities, percentiles)]
    return sorted(results, key=lambda r: r.probability, reverse=True)
