"""`clip-arena score --engine ray`: the batch scorer of analyzer/batch.py on Ray Data.

The driver reads the CSV with the local engine's reader (`read_records`, `fit_record`: a short or
long row is that row's `bad_row`), in parts of `part_rows` rows. CPU tasks fetch and decode each
part's images under the image-source policy (the local `_fetch_chunk`: `load_cell`, reduced JPEG
decode to the model's input size); actors, each holding the model once, score the part (the local
`_score_chunk`: per-row errors, scores, `output_row`'s neutralised cells) and send back its CSV rows,
written by the local `safe_writer`, which the driver stores as a numbered part file as soon as it
arrives. At the end the parts are joined, in input order, under the local engine's `output_header`
into one CSV, and removed. `--resume` keeps the parts a killed run finished.
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

from clip_arena.analyzer.batch import (BatchOptions, BatchReport, _EmbeddingCache, _fetch_chunk, _score_chunk, batch_transform,
                            fit_record, input_size, open_input, output_header)
from clip_arena.core.spreadsheet import safe_writer
from clip_arena.engines.parts import PartStore, fingerprint
from clip_arena.engines.ray_runtime import RayOptions, actor_class, actors_on_cuda, ray_session, run_parts


def score_csv_ray(input_path: str | os.PathLike, output_path: str | os.PathLike, spec: str, options: BatchOptions,
                  ray_options: RayOptions, device: str | None = None, precision: str | None = None,
                  progress: Callable[[float, str], None] | None = None) -> BatchReport:
    """Score `input_path` into `output_path` on Ray; the same file the local `score_csv` writes."""
    from clip_arena.models import get_encoder

    input_path, output_path = Path(input_path), Path(output_path)
    records, header, image_index, caption_index = open_input(input_path, options)
    image_col, caption_col = header[image_index], header[caption_index]
    report = BatchReport(image_column=image_col, caption_column=caption_col)
    out_header = output_header(header)
    store = PartStore.beside(output_path, ".csv")
    if not options.resume:
        store.remove()
    # The driver's copy of the model gives the image preprocessing the decoding tasks apply.
    driver_encoder = get_encoder(spec, "cpu", "fp32")
    # uint8 pixels for the actors to normalise, or JPEG bytes when the actors decode on their GPU
    transform = batch_transform(driver_encoder, options.decode, device_is_cuda=actors_on_cuda(ray_options, device))
    target_size = input_size(driver_encoder) if options.reduced_decode else None
    policy = options.policy()
    config = fingerprint(spec, precision, image_col, caption_col, out_header, options.image_roots,
                         asdict(options.limits), options.batch_size, options.audience, target_size, type(transform).__name__)
    sizes: dict[int, int] = {}
    keys: dict[int, str] = {}

    def parts():  # (values, bad_row) rows in parts of part_rows, as the local engine cuts its chunks
        part = []
        for record, _ in records:
            if not record:  # a blank line is not a row
                continue
            part.append(fit_record(record, len(header)))
            if len(part) == ray_options.part_rows:
                yield part
                part = []
        if part:
            yield part

    def pending_parts():
        for index, part in enumerate(parts()):
            keys[index] = fingerprint(config, header, part)
            sizes[index] = len(part)
            if store.done(index, keys[index]):
                report.skipped_resumed += len(part)
            else:
                yield index, pickle.dumps(part, protocol=5)

    fetch_workers = options.fetch_workers

    def decode(payload: bytes) -> bytes:  # a CPU task: fetch and preprocess one part's images
        part = pickle.loads(payload)
        with ThreadPoolExecutor(fetch_workers, thread_name_prefix="fetch") as pool:
            fetched = _fetch_chunk(pool, [values[image_index] for values, _ in part], policy, {}, transform,
                                   target_size)
        return pickle.dumps((part, fetched), protocol=5)

    def make_scorer():  # once per actor: the model
        encoder = get_encoder(spec, device, precision)

        def score(payload: bytes) -> bytes:
            part, fetched = pickle.loads(payload)
            counts = BatchReport()
            cache = _EmbeddingCache(max(options.cache_size, len(part)))
            rows = _score_chunk(part, fetched, encoder, options, cache, counts, image_index, caption_index, policy,
                                target_size)
            text = io.StringIO()
            safe_writer(text).writerows(rows)
            return pickle.dumps((text.getvalue(), counts.rows, counts.scored, counts.errors), protocol=5)

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
    _join(store, keys, out_header, output_path)
    store.remove()
    report.seconds = time.perf_counter() - start
    return report


def _join(store: PartStore, keys: dict[int, str], out_header: list[str], output_path: Path) -> None:
    """Header and parts in input order -> the output, atomically."""
    tmp = output_path.with_name(output_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        safe_writer(out).writerow(out_header)
        for index in range(len(keys)):
            with open(store.path(index, keys[index]), encoding="utf-8", newline="") as part:
                shutil.copyfileobj(part, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, output_path)
