"""The Batch tab's logic as plain functions: columns of an uploaded CSV, scoring, preview, histogram."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from analyzer.batch import BatchOptions, BatchReport, score_csv
from analyzer.csv_io import detect_columns, sniff
from core.downloads import new_folder
from core.errors import UserError
from core.settings import Settings
from models import get_encoder

PREVIEW_ROWS = 50


def columns_of(csv_path: str) -> tuple[list[str], str | None, str | None]:
    """Header of the CSV and the detected image and caption columns (None when not found)."""
    _, header = sniff(csv_path)
    detected = []
    for which in ("image", "caption"):
        try:
            detected.append(detect_columns(header)[0 if which == "image" else 1])
        except UserError:
            detected.append(None)
    return header, detected[0], detected[1]


def histogram(scored: Path) -> go.Figure:
    values = []
    for chunk in pd.read_csv(scored, usecols=["cosine"], chunksize=100_000):
        values.extend(chunk["cosine"].dropna().tolist())
    fig = go.Figure(go.Histogram(x=values, nbinsx=40, marker_color="#2a9d8f"))
    fig.update_layout(title=f"Cosine of {len(values):,} scored rows", xaxis_title="cosine", yaxis_title="rows",
                      height=320)
    return fig


def errors_text(report: BatchReport) -> str:
    if not report.errors:
        return f"**Done:** {report.summary()}."
    kinds = "\n".join(f"- `{kind}`: {n:,} row{'s' if n != 1 else ''}" for kind, n in report.errors.most_common())
    return f"**Done:** {report.summary()}.\n\nRows with errors, by kind (each row's `error` column says why):\n{kinds}"


def run_batch(csv_path: str, image_column: str, caption_column: str, model: str, settings: Settings,
              progress=None) -> tuple[pd.DataFrame, go.Figure, str, str]:
    if not csv_path:
        raise UserError("Drop a CSV file first.")
    out_dir = new_folder("batch")
    output = out_dir / f"{Path(csv_path).stem}_scored.csv"
    options = BatchOptions(image_column=image_column or None, caption_column=caption_column or None,
                           image_roots=settings.image_roots, limits=settings.limits)
    encoder = get_encoder(model, settings.device, settings.precision)
    report = score_csv(csv_path, output, encoder, options, progress)
    preview = pd.read_csv(output, dtype=str, keep_default_na=False, nrows=PREVIEW_ROWS)
    return preview, histogram(output), errors_text(report), str(output)
