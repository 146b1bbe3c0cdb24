"""The Similarity tab's logic as plain functions: inputs as the tab gives them, outputs as it shows them."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from clip_arena.analyzer.model_choice import choose
from clip_arena.analyzer.policy import ImagePolicy
from clip_arena.analyzer.scores import SHOWN_DECIMALS, rounded, shown
from clip_arena.analyzer.similarity import SimilarityResult, score_image_texts, split_captions
from clip_arena.core.errors import UserError
from clip_arena.core.hosting import caption_caps
from clip_arena.core.settings import Settings
from clip_arena.models.fallback import photo_model

COLUMNS = ["rank", "caption", "cosine", "similarity", "clip_score", "percentile"]
PROBABILITY_COLUMN = "P(match)"  # shown only when the model is calibrated (or a fusion)


def calibrated(results: list[SimilarityResult]) -> bool:
    return any(r.probability is not None for r in results)


def results_table(results: list[SimilarityResult]) -> pd.DataFrame:
    rows = [
        {"rank": i, "caption": r.text, **{name: rounded(name, getattr(r, name)) for name in SHOWN_DECIMALS},
         PROBABILITY_COLUMN: rounded("probability", r.probability) if r.probability is not None else None}
        for i, r in enumerate(results, start=1)
    ]
    return pd.DataFrame(rows, columns=COLUMNS + [PROBABILITY_COLUMN] * calibrated(results))


def results_figure(results: list[SimilarityResult]) -> go.Figure:
    ordered = list(reversed(results))  # plotly draws bottom-up; best on top
    fused = any(r.cosine != r.cosine for r in results)  # a fusion has no cosine (NaN): its probability is drawn
    against = "mismatched pairs" if calibrated(results) else "generic captions"
    fig = go.Figure(go.Bar(
        x=[r.probability if fused else r.cosine for r in ordered],
        y=[r.text if len(r.text) <= 60 else r.text[:57] + "..." for r in ordered],
        orientation="h",
        text=[f"{_headline(r, fused)} (beats {shown('percentile', r.percentile)}% of {against})" for r in ordered],
        textposition="auto",
        marker_color=["#2a9d8f" if r.percentile >= 90 else "#8d99ae" for r in ordered],
    ))
    fig.update_layout(
        title="Calibrated probability of a match per caption" if fused else "Cosine similarity per caption",
        xaxis_title="P(match)" if fused else "cosine", height=120 + 40 * len(results),
        margin=dict(l=10, r=10, t=40, b=30),
    )
    return fig


def _headline(r: SimilarityResult, fused: bool) -> str:
    if fused:
        return f"P(match) {shown('probability', r.probability)}"
    if r.probability is not None:
        return f"{shown('cosine', r.cosine)}, P(match) {shown('probability', r.probability)}"
    return shown("cosine", r.cosine)


def summary_line(results: list[SimilarityResult], model: str) -> str:
    best = results[0]
    if best.probability is not None:
        how = "" if best.cosine != best.cosine else f", cosine {shown('cosine', best.cosine)}"
        return (f"Best match: **{best.text}**, calibrated probability of a match {shown('probability', best.probability)}"
                f"{how}; it beats {shown('percentile', best.percentile)}% of the calibration's mismatched pairs "
                f"(model `{model}`).")
    return (f"Best match: **{best.text}**, cosine {shown('cosine', best.cosine)}, similarity "
            f"{shown('similarity', best.similarity)}, CLIPScore {shown('clip_score', best.clip_score)}; it beats "
            f"{shown('percentile', best.percentile)}% of generic captions for this image (model `{model}`).")


def run_similarity(image_file: str | None, image_url: str, captions: str, model: str,
                   settings: Settings, upload_dir: str | None = None) -> tuple[pd.DataFrame, go.Figure, str]:
    """The tab's run; the image goes through the server's image policy, the model must be offered."""
    if not image_file and not (image_url or "").strip():
        raise UserError("Add an image: upload, paste or drop one, or give its URL.")
    most, chars = caption_caps(settings)
    if len(captions or "") > chars:
        raise UserError(f"The captions hold {len(captions):,} characters; one call takes at most {chars:,} "
                        "(use the Batch CSV tab for more).")
    texts = split_captions(captions)
    if not texts:
        raise UserError("Give at least one caption (one per line).")
    if len(texts) > most:
        raise UserError(f"That is {len(texts):,} captions; one call takes at most {most:,} "
                        "(use the Batch CSV tab for more).")
    chosen = choose(model, settings, fusions=True)  # with a models file: one live handle for the whole request
    image = ImagePolicy.for_server(settings).load_from_tab(image_file, image_url, upload_dir)
    if chosen.handle is None:
        encoder, used = photo_model(settings, chosen.spec)
        results = score_image_texts(encoder, image, texts)
        return results_table(results), results_figure(results), summary_line(results, used.used)
    results = score_named(chosen.handle, image, texts)
    return results_table(results), results_figure(results), summary_line(results, chosen.label)


def score_named(handle, image, texts: list[str]) -> list[SimilarityResult]:
    """Scores by a model of the models file: its calibration applied, or its fusion's probabilities."""
    if handle.fusion is not None:
        from clip_arena.analyzer.similarity import score_fused

        return score_fused(handle.fusion, image, texts)
    if handle.calibration is not None:
        return score_image_texts(handle.encoder, image, texts, calibration=handle.calibration)
    return score_image_texts(handle.encoder, image, texts)
