"""Zero-shot labels with the CLIP model: the image against a shipped vocabulary (objects, scenes,
styles, materials, colours, moods). Probabilities are a softmax within each category at CLIP's
logit scale of 100, so they compare labels of one category, not categories with each other."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from clip_arena.analyzer.content.component import Backend, Component, Context, demo_model_caveat
from clip_arena.models.per_encoder import per_encoder

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.json")
LOGIT_SCALE = 100.0
TOP_K = 5


@lru_cache(maxsize=1)
def vocabulary() -> dict:
    """{category: {"template": "... {} ...", "labels": [...]}}"""
    return json.loads(VOCABULARY_FILE.read_text(encoding="utf-8"))


@per_encoder
def _label_vectors(encoder) -> dict[str, np.ndarray]:
    """Each category's prompt embeddings, once per encoder."""
    return {cat: encoder.encode_texts([spec["template"].format(label) for label in spec["labels"]])
            for cat, spec in vocabulary().items()}


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def label(ctx: Context) -> dict:
    vectors = _label_vectors(ctx.encoder)
    categories, top = {}, []
    for cat, spec in vocabulary().items():
        probs = softmax(LOGIT_SCALE * (vectors[cat] @ ctx.image_vector))
        order = np.argsort(-probs)[:TOP_K]
        categories[cat] = [{"label": spec["labels"][i], "probability": round(float(probs[i]), 4)} for i in order]
        top.append({"category": cat, **categories[cat][0]})
    return {"top": top, "categories": categories}


def component(model: str) -> Component:
    return Component(
        name="labels",
        needs_image=True,
        caveat=demo_model_caveat,
        backends=(Backend(f"clip:{model}", label),),
    )
