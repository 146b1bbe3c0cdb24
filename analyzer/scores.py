"""The one definition of the similarity scores (DESIGN.md, "Similarity score")."""

from __future__ import annotations

import numpy as np


def scores_from_cosine(cosine: float) -> dict[str, float]:
    """cosine as is; similarity = (cosine + 1) / 2 rounded to 4 decimals (0..1, the original
    challenge's definition); clip_score = max(100 * cosine, 0) (torchmetrics, per pair)."""
    cosine = float(np.clip(cosine, -1.0, 1.0))
    return {
        "cosine": cosine,
        "similarity": round((cosine + 1.0) / 2.0, 4),
        "clip_score": max(100.0 * cosine, 0.0),
    }


def scores_from_cosines(cosines: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised form of scores_from_cosine for whole batches."""
    cosines = np.clip(np.asarray(cosines, dtype=np.float64), -1.0, 1.0)
    return {
        "cosine": cosines,
        "similarity": np.round((cosines + 1.0) / 2.0, 4),
        "clip_score": np.maximum(100.0 * cosines, 0.0),
    }


# How many decimals each score is shown with, in every place one tab or command shows it (summary,
# table, chart, the command line), so the same score never reads 0.393 in one place and 0.3925 in another.
SHOWN_DECIMALS = {"cosine": 4, "similarity": 4, "clip_score": 2, "percentile": 1}
PROBABILITY_DECIMALS = 3  # a calibrated probability of a match (models.calibration), where a model has one


def _decimals(name: str) -> int:
    return PROBABILITY_DECIMALS if name == "probability" else SHOWN_DECIMALS[name]


def rounded(name: str, value: float) -> float:
    return round(float(value), _decimals(name))


def shown(name: str, value: float) -> str:
    return f"{float(value):.{_decimals(name)}f}"
