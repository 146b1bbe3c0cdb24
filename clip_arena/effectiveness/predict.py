"""The Analyze tab's effectiveness section: a loaded model's prediction for one creative, with
the cross-validated error that says how far to trust it."""

from __future__ import annotations

import pandas as pd

from clip_arena.analyzer.content.component import DEGRADED, OK, Context, section
from clip_arena.effectiveness.features import embedding_dim, embedding_rows, feature_frame, flatten_numbers, tabular_frame
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


def predictor(model: TrainedModel, path: str = ""):
    """A report.Predictor for `model`."""

    def predict(ctx: Context, sections: dict) -> dict:
        value = float(model.predict_frame(features_for(model, ctx, sections))[0])
        report = model.report
        missing = list(model.schema)
        status, reason = OK, None
        if missing:
            status = DEGRADED
            reason = f"tabular columns {', '.join(missing)} are not given here, so they count as missing"
        return section(status, "hist-gradient-boosting", reason, {
            "target": report["target"], "prediction": round(value, 6),
            "cv_mae": round(report["model"]["mae_mean"], 6), "cv_mae_std": round(report["model"]["mae_std"], 6),
            "dummy_mae": round(report["dummy"]["mae_mean"], 6), "beats_dummy": report["beats_dummy"],
            "trained_rows": report["rows"], "clip_model": model.clip_model, "model_file": path,
        })

    return predict
