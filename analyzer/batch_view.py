"""The Batch tab's logic as plain functions: columns of an uploaded CSV, scoring, preview, histogram."""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import replace
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from clip_arena.analyzer.batch import (SCORE_COLUMNS, BatchCancelled, BatchOptions, BatchReport, _EmbeddingCache,
                                      is_video_cell, keep_clashing, read_records, score_csv)
from clip_arena.analyzer.csv_io import detect_columns, sniff
from clip_arena.analyzer.model_choice import choose
from clip_arena.analyzer.policy import BROWSER, ImagePolicy
from clip_arena.core.downloads import new_folder
from clip_arena.core.errors import UserError
from clip_arena.core.hosting import max_batch_rows
from clip_arena.core.settings import Settings
from clip_arena.models.fallback import photo_model

PREVIEW_ROWS = 50
PREVIEW_COLUMNS = ("row", "thumbnail")  # the preview's own, before the file's
THUMBNAIL_PX = 64
SORTS = ("input order", "score, high to low", "score, low to high")  # score: see score_column
_OLD_SORTS = {"cosine, high to low": SORTS[1], "cosine, low to high": SORTS[2]}  # what API clients sent before
SHOWS = ("all rows", "scored rows", "rows with errors")


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


def score_column(columns) -> str:
    """The score a scored file is read by: `probability` when it has one (a calibrated model, or a fusion,
    whose `cosine` is empty: raw cosines of different models mean different things), else `cosine`."""
    return "probability" if "probability" in columns else "cosine"


SCORE_TITLES = {"probability": "Calibrated probability of a match", "cosine": "Cosine"}


def histogram(scored: Path) -> go.Figure:
    column = score_column(pd.read_csv(scored, nrows=0).columns)
    values = []
    for chunk in pd.read_csv(scored, usecols=[column], chunksize=100_000):
        values.extend(chunk[column].dropna().tolist())
    fig = go.Figure(go.Histogram(x=values, nbinsx=40, marker_color="#2a9d8f"))
    fig.update_layout(title=f"{SCORE_TITLES[column]} of {len(values):,} scored rows", xaxis_title=column,
                      yaxis_title="rows", height=320)
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
    chosen = choose(model, settings, fusions=True)  # with a models file: its live handle, kept for the whole run
    check_batch_rows(csv_path, settings)
    out_dir = new_folder("batch")
    output = out_dir / f"{Path(csv_path).stem}_scored.csv"
    from clip_arena.analyzer.video.limits import VideoLimits

    policy = ImagePolicy.for_server(settings)
    options = BatchOptions(image_column=image_column or None, caption_column=caption_column or None,
                           image_roots=list(policy.roots) if policy.roots is not None else None,
                           limits=settings.limits, audience=BROWSER, chunk_rows=256,  # 256: Cancel answers sooner
                           video_limits=VideoLimits.for_settings(settings))  # hosted: the lower video caps
    if chosen.handle is not None:  # a fusion scores in place of an encoder; a calibration adds two columns
        handle = chosen.handle
        encoder = handle.fusion if handle.fusion is not None else handle.encoder
        if handle.entry.batch_size:
            options = replace(options, batch_size=handle.entry.batch_size)
        if handle.calibration is not None:
            options = replace(options, calibration=handle.calibration)
    else:
        encoder, _ = photo_model(settings, chosen.spec)
    try:
        report = score_csv(csv_path, output, encoder, options, progress, should_stop)
    except BatchCancelled as err:
        preview = refresh_preview(str(output), image_column, SORTS[0], SHOWS[0], model, settings)
        return preview, histogram(output), f"**Cancelled:** {err}", str(output)
    preview = preview_table(output, report.image_column, SORTS[0], SHOWS[0], _thumbnail_encoder(encoder), settings)
    summary = errors_text(report)
    if chosen.handle is not None:  # with a models file: which NAME and spec scored the rows
        summary += f"\n\nScored by model `{chosen.label}`."
    return preview, histogram(output), summary, str(output)


def _thumbnail_encoder(scorer):
    """The encoder that embeds a preview's images: a fusion's first member (a fused file carries its own
    percentile, so the vector only keys the thumbnail cache)."""
    members = getattr(scorer, "members", None)
    return members[0].encoder if members else scorer


def preview_rows(scored: str | Path, sort: str = SORTS[0], show: str = SHOWS[0],
                 limit: int = PREVIEW_ROWS) -> pd.DataFrame:
    """The rows of a scored CSV to preview, read in chunks (any size of file): `show` filters them
    by error, `sort` orders them by score (score_column: probability, else cosine); `row` is each row's
    number in the input."""
    sort = _OLD_SORTS.get(sort, sort)
    if sort not in SORTS or show not in SHOWS:
        raise UserError(f"Sort by one of {', '.join(SORTS)}; show one of {', '.join(SHOWS)}.")
    kept, start = None, 0
    for chunk in pd.read_csv(scored, dtype=str, keep_default_na=False, chunksize=20_000):
        chunk.columns = keep_clashing(list(chunk.columns), PREVIEW_COLUMNS)  # an input's own `row` stays, renamed
        chunk.insert(0, "row", range(start + 1, start + 1 + len(chunk)))
        start += len(chunk)
        failed = chunk["error"].str.len() > 0
        chunk = chunk[~failed] if show == SHOWS[1] else chunk[failed] if show == SHOWS[2] else chunk
        kept = chunk if kept is None else pd.concat([kept, chunk])
        if sort == SORTS[0]:
            if len(kept) >= limit:
                break
        else:
            key = pd.to_numeric(kept[score_column(kept.columns)], errors="coerce")
            order = key.sort_values(ascending=sort == SORTS[2], na_position="last", kind="stable").index
            kept = kept.loc[order].head(limit)  # chunks number their rows on: the index is unique
    return (kept if kept is not None else pd.DataFrame(columns=["row"])).head(limit).reset_index(drop=True)


def thumbnail_markdown(image) -> str:
    """A small inline picture (a data URL: the browser gets pixels, never a path on the server)."""
    small = image.copy()
    small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buffer = io.BytesIO()
    small.convert("RGB").save(buffer, format="JPEG", quality=80)
    return f"![thumbnail](data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()})"


_PREVIEW_CACHE = _EmbeddingCache(512)  # 10 previews of 50 rows; a thumbnail and a vector are a few KB
_PREVIEW_LOCK = threading.Lock()


def _preview_image(source: str, policy: ImagePolicy, encoder) -> tuple[str, object]:
    """(thumbnail, image vector) of a scored row's image, kept across sorts and filters of a
    preview, so changing the order does not fetch (or read) its 50 images again."""
    key = (encoder.spec, str(encoder.device), policy.roots, source)
    with _PREVIEW_LOCK:
        if key in _PREVIEW_CACHE:
            _PREVIEW_CACHE.move_to_end(key)
            return _PREVIEW_CACHE[key]
    image = policy.load(source)
    value = (thumbnail_markdown(image), encoder.encode_images([image])[0])
    with _PREVIEW_LOCK:
        _PREVIEW_CACHE.put(key, value)
    return value


def with_thumbnails(rows: pd.DataFrame, image_column: str, encoder, settings: Settings) -> pd.DataFrame:
    """Each scored row with its image's thumbnail and its percentile among generic captions for
    that image (as the Similarity tab reports it; a calibrated model's or a fusion's file has its own
    percentile, kept); rows with an error or no score get neither."""
    from clip_arena.analyzer.similarity import percentile_among_references
    from clip_arena.core.errors import ImageLoadError
    from clip_arena.core.spreadsheet import restore

    policy = ImagePolicy.for_server(settings)  # the same roots and refusals as the scoring itself
    encoder = _thumbnail_encoder(encoder)  # a fusion: its first member's

    own_percentile = "percentile" in rows.columns  # among the calibration's mismatched pairs
    score = score_column(rows.columns)
    thumbs, percentiles = [], []
    for _, row in rows.iterrows():
        thumb, pct = "", ""
        video = image_column in row and is_video_cell(restore(row[image_column]))
        if not video and not row.get("error") and image_column in row and row.get(score, "") != "":
            try:
                thumb, vector = _preview_image(restore(row[image_column]), policy, encoder)
                if not own_percentile:
                    pct = f"{percentile_among_references(encoder, vector, float(row['cosine'])):.1f}"
            except (ImageLoadError, ValueError):
                pass  # changed since it was scored: the table still shows the row
        thumbs.append(thumb)
        percentiles.append(pct)
    out = rows.copy()
    out.insert(1, "thumbnail", thumbs)
    at = list(out.columns).index("cosine") + 1 if "cosine" in out.columns else len(out.columns)
    if not own_percentile:
        out.insert(at, "percentile", percentiles)
    return out


def preview_table(scored: str | Path, image_column: str, sort: str, show: str, encoder, settings: Settings) -> pd.DataFrame:
    return with_thumbnails(preview_rows(scored, sort, show), image_column, encoder, settings)


def refresh_preview(scored: str | None, image_column: str, sort: str, show: str, model: str, settings: Settings) -> pd.DataFrame | None:
    """The preview again, sorted or filtered another way, from the scored file on disk."""
    if not scored:
        return None
    if not Path(scored).is_file():
        raise ResultGone("The scored file is gone (results are cleaned after an hour).")
    _, header = sniff(scored)
    if not set(SCORE_COLUMNS) <= set(header):
        raise UserError("That file is not a scored CSV from this tab (it has no cosine and error columns); "
                        "run the batch again.")
    image_column = detect_columns(header, image_column or None, None)[0]
    chosen = choose(model, settings, fusions=True)
    handle = chosen.handle
    encoder = (_thumbnail_encoder(handle.fusion or handle.encoder) if handle is not None
               else photo_model(settings, chosen.spec)[0])
    try:
        return preview_table(scored, image_column, sort, show, encoder, settings)
    except (ValueError, KeyError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise UserError("That file is not a scored CSV from this tab; run the batch again.") from err


class ResultGone(UserError):
    """The scored file a preview was asked of no longer exists."""


def preview_datatypes(frame: pd.DataFrame) -> list[str]:
    return ["markdown" if c == "thumbnail" else "str" for c in frame.columns]


NARROW = {"row": 5, "thumbnail": 8, "cosine": 9, "percentile": 9, "similarity": 9, "clip_score": 9, "cosine_max": 9,
          "frames": 6}
ERROR_WIDTH = 25


def preview_widths(frame: pd.DataFrame) -> list[str]:
    """Column widths (% of the table) that fit the preview in the page, cells wrapping: the error
    column, a sentence, gets a quarter; the input's own columns share what is left."""
    columns = list(frame.columns)
    fixed = sum(NARROW.get(c, 0) for c in columns) + (ERROR_WIDTH if "error" in columns else 0)
    others = [c for c in columns if c not in NARROW and c != "error"]
    share = max(100 - fixed, 10) / max(len(others), 1)
    return [f"{NARROW[c] if c in NARROW else ERROR_WIDTH if c == 'error' else share:g}%" for c in columns]
