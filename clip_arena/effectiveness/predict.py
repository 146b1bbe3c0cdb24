"""The Analyze tab's effectiveness section: a loaded model's prediction for one creative, with
the cross-validated error that says how far to trust it."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from clip_arena.analyzer.content.component import DEGRADED, OK, Context, section
from clip_arena.effectiveness.features import (embedding_dim, embedding_rows, feature_frame, flatten_numbers,
                                               keyframe_embedding, tabular_frame, video_analysis_numbers, video_numbers)
from clip_arena.effectiveness.model import TrainedModel


def features_for(model: TrainedModel, ctx: Context, sections: dict) -> pd.DataFrame:
    """The same features as in training. When the analysis ran with the model's CLIP, its sections
    and image embedding are reused; otherwise they are computed again with that CLIP."""
    from clip_arena.analyzer.content.report import analyze

    if ctx.model != model.clip_model:
        ctx = Context(image=ctx.image, text=ctx.text, settings=ctx.settings, model=model.clip_model)
        sections = {}
    if not set(model.sections) <= set(sections):
        vector = ctx.image_vector if ctx.image is not None else None
        sections = analyze(ctx.image, ctx.text, ctx.settings, model=model.clip_model,
                           only=set(model.sections), image_vector=vector)["sections"]
    dim = embedding_dim(ctx.encoder)
    img = embedding_rows(lambda images: ctx.image_vector[None], [ctx.image], dim)
    txt = embedding_rows(ctx.encoder.encode_texts, [ctx.text], dim)
    tabular = tabular_frame(pd.DataFrame(index=[0]), model.schema)
    return feature_frame(tabular, img, txt, [flatten_numbers(sections)])


def prediction_section(model: TrainedModel, X: pd.DataFrame, path: str = "", note: str | None = None) -> dict:
    """The effectiveness section of one creative's features, with the error to trust it by."""
    value = float(model.predict_frame(X)[0])
    report = model.report
    missing = list(model.schema)
    status, reasons = OK, [note] if note else []
    if missing:
        status = DEGRADED
        reasons.insert(0, f"tabular columns {', '.join(missing)} are not given here, so they count as missing")
    return section(status, "hist-gradient-boosting", "; ".join(reasons) or None, {
        "target": report["target"], "prediction": round(value, 6),
        "cv_mae": round(report["model"]["mae_mean"], 6), "cv_mae_std": round(report["model"]["mae_std"], 6),
        "dummy_mae": round(report["dummy"]["mae_mean"], 6), "beats_dummy": report["beats_dummy"],
        "trained_rows": report["rows"], "clip_model": model.clip_model, "model_file": path,
    })


def predictor(model: TrainedModel, path: str = ""):
    """A report.Predictor for `model`."""

    def predict(ctx: Context, sections: dict) -> dict:
        return prediction_section(model, features_for(model, ctx, sections), path)

    return predict


def video_features_for(model: TrainedModel, report: dict, text: str, brand: str | None, settings) -> pd.DataFrame:
    """A video's features as in training (features.creative_features): keyframe-mean embedding,
    text embedding, keyframe-mean analysis numbers and the vid numbers. `report` must come from the
    model's CLIP, with its keyframes written to disk."""
    from clip_arena.models import get_encoder

    encoder = get_encoder(model.clip_model, settings.device, settings.precision)
    dim = embedding_dim(encoder)
    vector = keyframe_embedding(encoder, report)
    img = embedding_rows(lambda _: vector[None], ["keyframes" if vector is not None else None], dim)
    txt = embedding_rows(encoder.encode_texts, [(text or "").strip()], dim)
    tabular = tabular_frame(pd.DataFrame(index=[0]), model.schema)
    ana = video_analysis_numbers(report["sections"], set(model.sections))
    vid = pd.DataFrame([video_numbers(report, brand)])
    return feature_frame(tabular, img, txt, [ana], vid)


@lru_cache(maxsize=4)
def load_cached(path: str) -> TrainedModel:
    from clip_arena.effectiveness.model import load

    return load(path)


def video_prediction(path: str, report: dict, source, text: str, brand: str | None, settings, policy=None) -> dict:
    """The effectiveness section for a video the Analyze tab analysed. When it was analysed with
    another CLIP than the model's, it is analysed again with the model's (its features must come from
    the CLIP it was trained with). A model trained on images only still predicts (its vid features
    are absent): the reason says so."""
    import tempfile

    model = load_cached(path)  # a bad file: the same one-sentence UserError as for an image
    note = None if any(c.startswith("vid__") for c in model.columns) else \
        "the model was trained without videos, so it sees this one through its keyframes and text only"
    if report.get("model") == model.clip_model:
        return prediction_section(model, video_features_for(model, report, text, brand, settings), path, note)
    from clip_arena.analyzer.video.report import analyze_video

    with tempfile.TemporaryDirectory(prefix="clip-arena-keyframes-") as frames:
        again = analyze_video(source, text, settings, model=model.clip_model, brand=brand, frames_dir=frames,
                              policy=policy)
        return prediction_section(model, video_features_for(model, again, text, brand, settings), path, note)
