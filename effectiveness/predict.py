"""The Analyze tab's effectiveness section: a loaded model's prediction for one creative, with
the cross-validated error that says how far to trust it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyzer.content.component import DEGRADED, OK, Context, section
from effectiveness.features import embedding_columns, flatten_numbers, tabular_frame
from effectiveness.model import TrainedModel


def features_for(model: TrainedModel, ctx: Context, sections: dict) -> pd.DataFrame:
    """The same features as in training; the analysis reuses the sections already computed when
    they came from the same CLIP model."""
    from analyzer.content.report import analyze

    if ctx.model != model.clip_model or not set(model.sections) <= set(sections):
        sections = analyze(ctx.image, ctx.text, ctx.settings, model=model.clip_model,
                           only=set(model.sections))["sections"]
    from models import get_encoder

    encoder = get_encoder(model.clip_model, ctx.settings.device, ctx.settings.precision)
    dim = encoder.encode_texts(["x"]).shape[1]
    img = encoder.encode_images([ctx.image]) if ctx.image is not None else np.full((1, dim), np.nan)
    txt = encoder.encode_texts([ctx.text]) if ctx.text else np.full((1, dim), np.nan)
    parts = [tabular_frame(pd.DataFrame(index=[0]), model.schema), embedding_columns("img", img),
             embedding_columns("txt", txt), pd.DataFrame([flatten_numbers(sections)])]
    return pd.concat(parts, axis=1)


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
