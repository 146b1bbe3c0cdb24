"""Batch CSV scoring: one streaming pass, bounded memory, images fetched while the model encodes.

The CSV is read in chunks of rows. For each chunk the distinct image sources are fetched and
decoded by a thread pool (I/O bound) while the previous chunk is being encoded, repeated images
are fetched and encoded once (a bounded cache across chunks), and the scored chunk is appended to
the output, in input order, before the next one. A bad row never stops the batch: it gets an
`error` and empty scores. `resume` continues an interrupted run after the rows already written.
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from analyzer.csv_io import detect_columns, sniff
from analyzer.images import load_image
from analyzer.scores import scores_from_cosines
from core.errors import ImageLoadError, UserError
from core.settings import FetchLimits
from core.spreadsheet import neutralise

SCORE_COLUMNS = ("cosine", "similarity", "clip_score", "error")


@dataclass
class BatchOptions:
    image_column: str | None = None
    caption_column: str | None = None
    image_roots: list[str] | None = None  # None: local paths refused
    limits: FetchLimits = field(default_factory=FetchLimits)
    chunk_rows: int = 1024
    batch_size: int = 64
    fetch_workers: int = 16
    cache_size: int = 4096  # distinct images whose embeddings are kept across chunks
    resume: bool = False


@dataclass
class BatchReport:
    rows: int = 0
    scored: int = 0
    skipped_resumed: int = 0
    errors: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    image_column: str = ""
    caption_column: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in self.errors.most_common()) or "none"
        resumed = f" ({self.skipped_resumed:,} already done)" if self.skipped_resumed else ""
        return (f"{self.rows:,} rows{resumed}, {self.scored:,} scored, {sum(self.errors.values()):,} errors "
                f"(by kind: {kinds}), {self.rows_per_s:,.1f} rows/s")


class _EmbeddingCache(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def _load(source: str, options: BatchOptions):
    """(pixels tensor or None, error kind, error message) for one image source."""
    try:
        if not source.strip():
            raise ImageLoadError("missing", "The image cell is empty.")
        if "://" not in source[:16] and options.image_roots is None:
            raise ImageLoadError("local_path_refused", f"Local path {source} refused: local paths are off here "
                                                        "(configure image roots to allow them).")
        return load_image(source, options.limits, options.image_roots), None, None
    except ImageLoadError as err:
        return None, err.kind, str(err)


def _fetch_chunk(pool: ThreadPoolExecutor, sources: list[str], options: BatchOptions, cache, transform) -> dict:
    """Distinct sources not cached -> {source: (pixels | None, kind, message)}, fetched concurrently."""
    todo = [s for s in dict.fromkeys(sources) if s not in cache]

    def work(source):
        image, kind, message = _load(source, options)
        return source, (transform(image) if image is not None else None, kind, message)

    return dict(pool.map(work, todo))


def output_columns(header: list[str]) -> list[str]:
    """The scored CSV's columns: the input's, then the score columns it does not already have."""
    return header + [c for c in SCORE_COLUMNS if c not in header]


def csv_writer(out):
    """The writer of every scored CSV, whichever engine produced the rows."""
    return csv.writer(out)


def read_chunks(raw, delimiter: str, chunk_rows: int, skip_rows: int = 0):
    """The input CSV as DataFrames of `chunk_rows` string cells (header names stripped)."""
    reader = pd.read_csv(raw, sep=delimiter, dtype=str, keep_default_na=False, chunksize=chunk_rows,
                         skiprows=range(1, skip_rows + 1) if skip_rows else None)
    for chunk in reader:
        chunk.columns = [c.strip() for c in chunk.columns]
        yield chunk


def _count_done(output: Path) -> int:
    with open(output, encoding="utf-8", newline="") as f:
        return max(0, sum(1 for _ in csv.reader(f)) - 1)


def _embed_images(sources: list[str], fetched: dict, encoder, options: BatchOptions, cache) -> None:
    """Put every source of the chunk in the cache: (vector, None, None) or (None, kind, message)."""
    import torch

    for source in dict.fromkeys(sources):
        if source not in cache and source not in fetched:  # evicted since the fetch looked: load now
            image, kind, message = _load(source, options)
            fetched[source] = (encoder.image_transform(image) if image is not None else None, kind, message)
    todo = [s for s in dict.fromkeys(sources) if s not in cache]
    good = [s for s in todo if fetched[s][0] is not None]
    for s in todo:
        if fetched[s][0] is None:
            cache.put(s, (None, fetched[s][1], fetched[s][2]))
    for i in range(0, len(good), options.batch_size):
        batch = good[i : i + options.batch_size]
        vectors = encoder.encode_pixels(torch.stack([fetched[s][0] for s in batch]))
        for s, v in zip(batch, vectors):
            cache.put(s, (v, None, None))


def _score_chunk(chunk: pd.DataFrame, fetched: dict, encoder, options: BatchOptions, cache, report: BatchReport,
                 image_col: str, caption_col: str) -> list[list]:
    sources, captions = chunk[image_col].tolist(), chunk[caption_col].tolist()
    _embed_images(sources, fetched, encoder, options, cache)
    texts = [c for c in dict.fromkeys(captions) if c.strip()]
    text_vectors = dict(zip(texts, encoder.encode_texts(texts))) if texts else {}
    entries = [cache[s] for s in sources]  # looked up now: later chunks may evict them
    cosines = np.full(len(chunk), np.nan)
    errors = [""] * len(chunk)
    for i, ((vector, kind, message), caption) in enumerate(zip(entries, captions)):
        if vector is None:
            errors[i] = f"{kind}: {message}"
            report.errors[kind] += 1
        elif not caption.strip():
            errors[i] = "missing_caption: The caption cell is empty."
            report.errors["missing_caption"] += 1
        else:
            cosines[i] = float(vector @ text_vectors[caption])
    scores = scores_from_cosines(np.nan_to_num(cosines))
    rows = []
    for i, values in enumerate(chunk.itertuples(index=False, name=None)):
        ok = not errors[i]
        rows.append([neutralise(str(v)) for v in values] + (
            [f"{scores['cosine'][i]:.6f}", f"{scores['similarity'][i]:.4f}", f"{scores['clip_score'][i]:.4f}", ""]
            if ok else ["", "", "", neutralise(errors[i])]))
    report.rows += len(chunk)
    report.scored += sum(1 for e in errors if not e)
    return rows


def score_csv(input_path: str | os.PathLike, output_path: str | os.PathLike, encoder, options: BatchOptions,
              progress: Callable[[float, str], None] | None = None) -> BatchReport:
    """Score every row of `input_path` into `output_path` (input columns + cosine, similarity,
    clip_score, error). Raises UserError only for problems of the whole file (columns, encoding)."""
    input_path, output_path = Path(input_path), Path(output_path)
    delimiter, header = sniff(input_path)
    image_col, caption_col = detect_columns(header, options.image_column, options.caption_column)
    report = BatchReport(image_column=image_col, caption_column=caption_col)
    out_columns = output_columns(header)
    done = 0
    if options.resume and output_path.exists():
        with open(output_path, encoding="utf-8", newline="") as f:
            if next(csv.reader(f), None) != out_columns:
                raise UserError(f"{output_path} was not written for this input; remove it or drop --resume.")
        done = report.skipped_resumed = _count_done(output_path)
    cache = _EmbeddingCache(options.cache_size)
    start = time.perf_counter()
    size = max(1, input_path.stat().st_size)
    with open(input_path, encoding="utf-8-sig", newline="") as raw, \
            open(output_path, "a" if done else "w", encoding="utf-8", newline="") as out, \
            ThreadPoolExecutor(options.fetch_workers, thread_name_prefix="fetch") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="fetch-ahead") as ahead:
        writer = csv_writer(out)
        if not done:
            writer.writerow(out_columns)

        def finish(chunk, future):
            writer.writerows(_score_chunk(chunk, future.result(), encoder, options, cache, report, image_col,
                                          caption_col))
            out.flush()
            os.fsync(out.fileno())  # a chunk on disk is a chunk --resume will not redo
            if progress:
                progress(min(1.0, raw.tell() / size), f"{report.rows + done:,} rows scored")

        pending = None
        try:
            for chunk in read_chunks(raw, delimiter, options.chunk_rows, done):
                # fetch this chunk while the previous one is encoded
                future = ahead.submit(_fetch_chunk, pool, chunk[image_col].tolist(), options, cache,
                                      encoder.image_transform)
                if pending is not None:
                    finish(*pending)
                pending = (chunk, future)
        except pd.errors.ParserError as err:
            raise UserError(f"The CSV could not be parsed after row {report.rows + done}: {err}.") from err
        if pending is not None:
            finish(*pending)
    report.seconds = time.perf_counter() - start
    return report
