"""Sentiment of the text: a twitter-roberta classifier when it can be loaded (field
`probabilities`), else VADER (fields `vader_*`; its lexicon ships inside vaderSentiment). Both set
`label` to positive / neutral / negative; VADER uses its authors' thresholds, compound >= 0.05
positive and <= -0.05 negative."""

from __future__ import annotations

from functools import lru_cache

from clip_arena.analyzer.content import hub
from clip_arena.analyzer.content.component import Backend, Component, Context

VADER_THRESHOLD = 0.05


def _load_classifier(name: str, device: str):
    from transformers import pipeline

    return pipeline("text-classification", model=name, top_k=None, device=device)


def with_model(ctx: Context) -> dict:
    classify = hub.load("sentiment", _load_classifier, ctx.settings.device or "cpu")
    scores = classify(ctx.text[:2000], truncation=True)
    scores = scores[0] if scores and isinstance(scores[0], list) else scores
    probabilities = {s["label"].lower(): round(float(s["score"]), 4) for s in scores}
    return {"label": max(probabilities, key=probabilities.get), "probabilities": probabilities}


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def with_vader(ctx: Context) -> dict:
    scores = _vader().polarity_scores(ctx.text)
    compound = scores["compound"]
    label = "positive" if compound >= VADER_THRESHOLD else "negative" if compound <= -VADER_THRESHOLD else "neutral"
    return {"label": label, "vader_compound": compound, "vader_positive": scores["pos"],
            "vader_neutral": scores["neu"], "vader_negative": scores["neg"]}


def component() -> Component:
    """Built per analysis, so the backend names the model id configured now."""
    return Component(
        name="sentiment",
        needs_text=True,
        backends=(
            Backend(hub.backend_name("sentiment"), with_model, modules=("transformers",),
                    models=(hub.model_id("sentiment"),)),
            Backend("vader", with_vader, modules=("vaderSentiment",)),
        ),
    )
