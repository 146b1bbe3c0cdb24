"""Score fusion: a named model that is a weighted combination of calibrated models.

Raw cosines of two models cannot be averaged (their scales differ); their calibrated probabilities
can. A fusion's probability of a match is the weighted mean of its members' calibrated probabilities
(weights normalised to sum 1); its percentile is the weighted mean of the members' percentiles among
their mismatched pairs (an approximation: the members' calibrations were fitted apart, so the joint
distribution of a fused score over mismatched pairs is not known).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from clip_arena.core.errors import UserError


def _dots(image_vecs, text_vecs) -> np.ndarray:
    """Row-wise cosines, one float32 dot each, as the Similarity tab and the Batch scorer compute them
    (a matrix product rounds differently in the last bits): a member alone scores as it does alone."""
    return np.array([float(i @ t) for i, t in zip(image_vecs, text_vecs)])


class Member(NamedTuple):
    name: str
    weight: float
    encoder: object
    calibration: object  # models.calibration.Calibration


class Fusion:
    def __init__(self, members, name: str = "fusion"):
        members = list(members)
        self.name = name
        if not members:
            raise UserError(f"The fusion {name} names no model.")
        for m in members:
            try:
                weight = float(m.weight)
            except (TypeError, ValueError):
                weight = math.nan
            if not math.isfinite(weight) or weight < 0:
                raise UserError(f"The fusion {name} gives {m.name} the weight {m.weight!r}; weights are numbers >= 0.")
            if m.calibration is None:
                raise UserError(f"The fusion {name} names {m.name}, which has no calibration; calibrate it first "
                                f"(clip-arena models calibrate {m.name} --pairs CSV), since raw cosines of "
                                "different models cannot be combined.")
            m.calibration.check(m.encoder)
        total = sum(float(m.weight) for m in members)
        if total <= 0:
            raise UserError(f"The fusion {name} gives every model the weight 0; give one a positive weight.")
        self.members = [Member(m.name, float(m.weight) / total, m.encoder, m.calibration) for m in members]

    def describe(self) -> str:
        return "fusion: " + " + ".join(f"{m.name} {m.weight:.3g}" for m in self.members)

    def fuse(self, cosines: list) -> tuple[np.ndarray, np.ndarray]:
        """(probability, percentile) from each member's cosines (one array per member, same shape)."""
        prob = sum(m.weight * m.calibration.probability(c) for m, c in zip(self.members, cosines))
        pct = sum(m.weight * m.calibration.percentile(c) for m, c in zip(self.members, cosines))
        return np.clip(np.asarray(prob, dtype=np.float64), 0, 1), np.clip(np.asarray(pct, dtype=np.float64), 0, 100)

    def scores(self, image, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(probability, percentile) of one image against each text."""
        cosines = []
        for m in self.members:
            image_vec = m.encoder.encode_images([image])[0]
            cosines.append(_dots([image_vec] * len(texts), m.encoder.encode_texts(list(texts))))
        return self.fuse(cosines)

    def probabilities(self, image, texts: list[str]) -> np.ndarray:
        return self.scores(image, texts)[0]

    def pair_scores(self, images: list, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(probability, percentile) of images[i] with texts[i], row by row (Batch rows)."""
        if len(images) != len(texts):
            raise ValueError("pair_scores needs as many images as texts")
        if not images:
            return np.empty(0), np.empty(0)
        cosines = []
        for m in self.members:
            image_vecs, text_vecs = m.encoder.encode_images(list(images)), m.encoder.encode_texts(list(texts))
            cosines.append(_dots(image_vecs, text_vecs))
        return self.fuse(cosines)

    def pair_probabilities(self, images: list, texts: list[str]) -> np.ndarray:
        return self.pair_scores(images, texts)[0]
