"""The Batch tab's logic as plain functions: columns of an uploaded CSV, scoring, preview, histogram."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

import threading

from analyzer.batch import BatchCancelled, BatchOptions, BatchReport, read_records, score_csv
from analyzer.csv_io import detect_columns, sniff
from analyzer.model_choice import check_browser_model
from analyzer.policy import BROWSER, ImagePolicy
from core.downloads import new_folder
from core.errors import UserError
from core.hosting import max_batch_rows
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


class CancelFlags:
    """One cancel flag per browser session's running batch: the Cancel button sets it, the batch
    stops between chunks (a worker thread cannot be killed; it has to be asked)."""

    def __init__(self):
        self.flags: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def start(self, key: str) -> threading.Event:
        with self.lock:
            self.flags[key] = threading.Event()
            return self.flags[key]

    def cancel(self, key: str) -> bool:
        with self.lock:
            flag = self.flags.get(key)
        if flag is not None:
            flag.set()
        return flag is not None

    def finish(self, key: str) -> None:
        with self.lock:
            self.flags.pop(key, None)


def local_paths_text(settings: Settings) -> str:
    """What the Batch tab says about local paths, without naming server folders."""
    if ImagePolicy.for_server(settings).roots is None:
        return "Local paths are off here: use http(s) URLs."
    return "Local paths are read only under the image folders configured on the server."


def _preview(output: Path) -> pd.DataFrame:
    return pd.read_csv(output, dtype=str, keep_default_na=False, nrows=PREVIEW_ROWS)


def check_batch_rows(csv_path: str, settings: Settings) -> None:
    """Refuse, before any work, a web batch longer than the server's cap (hosted: 5,000 rows)."""
    cap = max_batch_rows(settings)
    if cap is None:
        return
    delimiter, _ = sniff(csv_path)
    for rows, _ in enumerate(read_records(Path(csv_path), delimiter)):  # 0: the header
        if rows > cap:
            raise UserError(f"This CSV has more than {cap:,} rows, the most this server scores at once; "
                            "split it, or score it on your machine with clip-arena score.")


def run_batch(csv_path: str, image_column: str, caption_column: str, model: str, settings: Settings,
              progress=None, should_stop=None) -> tuple[pd.DataFrame, go.Figure, str, str]:
    if not csv_path:
        raise UserError("Drop a CSV file first.")
    model = check_browser_model(model, settings)
    check_batch_rows(csv_path, settings)
    out_dir = new_folder("batch")
    output = out_dir / f"{Path(csv_path).stem}_scored.csv"
    policy = ImagePolicy.for_server(settings)
    options = BatchOptions(image_column=image_column or None, caption_column=caption_column or None,
                           image_roots=list(policy.roots) if policy.roots is not None else None,
                           limits=settings.limits, audience=BROWSER, chunk_rows=256)  # 256: Cancel answers sooner
    encoder = get_encoder(model, settings.device, settings.precision)
    try:
        report = score_csv(csv_path, output, encoder, options, progress, should_stop)
    except BatchCancelled as err:
        return _preview(output), histogram(output), f"**Cancelled:** {err}", str(output)
    return _preview(output), histogram(output), errors_text(report), str(output)
