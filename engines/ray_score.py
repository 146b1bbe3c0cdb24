"""`clip-arena score --engine ray`: the batch scorer of analyzer/batch.py on Ray Data.

The driver reads the CSV with the local engine's reader, in parts of `part_rows` rows. CPU tasks
fetch and decode each part's images under the image-source policy (the local `_fetch_chunk`);
actors, each holding the model once, score the part (the local `_score_chunk`: per-row errors,
scores, neutralised cells) and send back its CSV rows, which the driver writes to a numbered part
file as soon as it arrives. At the end the parts are joined, in input order, under the local
engine's header into one CSV, and removed. `--resume` keeps the parts a killed run finished.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import pandas as pd

from analyzer.batch import (BatchOptions, BatchReport, _EmbeddingCache, _fetch_chunk, _score_chunk, csv_writer,
                            output_columns, read_chunks)
from analyzer.csv_io import detect_columns, sniff
from core.errors import UserError
from engines.parts import PartStore, fingerprint
from engines.ray_runtime import RayOptions, actor_class, ray_session, run_parts


def score_csv_ray(input_path: str | os.PathLike, output_path: str | os.PathLike, spec: str, options: BatchOptions,
                  ray_options: RayOptions, device: str | None = None, precision: str | None = None,
                  progress: Callable[[float, str], None] | None = None) -> BatchReport:
    """Score `input_path` into `output_path` on Ray; the same file the local `score_csv` writes."""
    from models import get_encoder

    input_path, output_path = Path(input_path), Path(output_path)
    delimiter, header = sniff(input_path)
    image_col, caption_col = detect_columns(header, options.image_column, options.caption_column)
    report = BatchReport(image_column=image_col, caption_column=caption_col)
    out_columns = output_columns(header)
    store = PartStore.beside(output_path, ".csv")
    if not options.resume:
        store.remove()
    # The driver's copy of the model gives the image preprocessing the decoding tasks apply.
    transform = get_encoder(spec, "cpu", "fp32").image_transform
    config = fingerprint(spec, precision, image_col, caption_col, out_columns, options.image_roots,
                         asdict(options.limits), options.batch_size)
    sizes: dict[int, int] = {}
    keys: dict[int, str] = {}

    def pending_parts():
        with open(input_path, encoding="utf-8-sig", newline="") as raw:
            try:
                for index, chunk in enumerate(read_chunks(raw, delimiter, ray_options.part_rows)):
                    keys[index] = fingerprint(config, list(chunk.columns), chunk.values.tolist())
                    sizes[index] = len(chunk)
                    if store.done(index, keys[index]):
                        report.skipped_resumed += len(chunk)
                    else:
                        yield index, pickle.dumps(chunk, protocol=5)
            except pd.errors.ParserError as err:
                raise UserError(f"The CSV could not be parsed after row {sum(sizes.values())}: {err}.") from err

    fetch_workers = options.fetch_workers

    def decode(payload: bytes) -> bytes:  # a CPU task: fetch and preprocess one part's images
        chunk = pickle.loads(payload)
        with ThreadPoolExecutor(fetch_workers, thread_name_prefix="fetch") as pool:
            fetched = _fetch_chunk(pool, chunk[image_col].tolist(), options, {}, transform)
        return pickle.dumps((chunk, fetched), protocol=5)

    def make_scorer():  # once per actor: the model
        encoder = get_encoder(spec, device, precision)

        def score(payload: bytes) -> bytes:
            chunk, fetched = pickle.loads(payload)
            part = BatchReport()
            rows = _score_chunk(chunk, fetched, encoder, options, _EmbeddingCache(max(options.cache_size, len(chunk))),
                                part, image_col, caption_col)
            text = io.StringIO()
            csv_writer(text).writerows(rows)
            return pickle.dumps((text.getvalue(), part.rows, part.scored, part.errors), protocol=5)

        return score

    start = time.perf_counter()
    with ray_session(ray_options):
        for index, payload in run_parts(pending_parts(), decode, actor_class("ScoreParts", make_scorer), ray_options):
            text, rows, scored, errors = pickle.loads(payload)
            store.write(index, keys[index], text.encode("utf-8"))
            report.rows += rows
            report.scored += scored
            report.errors.update(errors)
            if progress:
                total = sum(sizes.values())
                done = report.rows + report.skipped_resumed
                progress(done / total if total else 1.0, f"{done:,} of {total:,} rows scored")
    _join(store, keys, out_columns, output_path)
    store.remove()
    report.seconds = time.perf_counter() - start
    return report


def _join(store: PartStore, keys: dict[int, str], out_columns: list[str], output_path: Path) -> None:
    """Header and parts in input order -> the output, atomically."""
    tmp = output_path.with_name(output_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        csv_writer(out).writerow(out_columns)
        for index in range(len(keys)):
            with open(store.path(index, keys[index]), encoding="utf-8", newline="") as part:
                shutil.copyfileobj(part, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, output_path)
