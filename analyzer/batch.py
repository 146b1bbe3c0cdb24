"""Batch CSV scoring: one streaming pass, bounded memory, images fetched while the model encodes.

The CSV is read record by record (csv module, bytes counted, so progress follows rows) in chunks.
For each chunk the distinct image sources are fetched and decoded by a thread pool (I/O bound)
while the previous chunk is being encoded, repeated images are fetched and encoded once (a bounded
cache across chunks), and the scored chunk is appended to the output, in input order, before the
next one. A bad row never stops the batch: whatever its cells hold, it gets an `error` and empty
scores. `resume` cuts the output back to its last complete record and continues after it.

A cell naming a video (a path or URL ending in .mp4, .mov, .m4v, .webm or .mkv) is scored against
its caption over frames sampled through the video (analyzer.video): `cosine` is the mean over the
frames, `cosine_max` the best frame, `frames` how many were scored (an image: one frame, so its
`cosine_max` is its `cosine`). Video rows are decoded while their chunk is scored, under the same
image-source policy (roots, URLs) and the video caps; a video that cannot be read is its row's error.

Row-level functions, shared with other engines (Ray Data) so every engine scores a row the same
way: `load_cell` (resolve the source under the policy, load, decode, transform; never raises),
`row_error`, `score_values`, `output_header` and `output_row` (neutralised cells).

A calibrated model (options.calibration, models.calibration) adds two columns before `error`:
`probability` (the calibrated probability of a match) and `percentile` (among the calibration's
mismatched pairs), from the row's cosine (a video's mean cosine). A fusion of calibrated models
(models.fusion.Fusion, passed in place of the encoder) fills only those two: it has no cosine.
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np

from clip_arena.analyzer.csv_io import detect_columns, sniff
from clip_arena.analyzer.fetch import is_url
from clip_arena.analyzer.policy import CLI, ImagePolicy
from clip_arena.analyzer.scores import scores_from_cosines
from clip_arena.core.errors import ImageLoadError, UserError
from clip_arena.core.settings import FetchLimits, Settings
from clip_arena.core.spreadsheet import neutralise_row, safe_writer

SCORE_COLUMNS = ("cosine", "similarity", "clip_score", "cosine_max", "frames", "error")
CALIBRATED_COLUMNS = ("probability", "percentile")  # before `error`, for a calibrated model or a fusion
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv")
MAX_LINE_BYTES = 16 * 1024 * 1024
csv.field_size_limit(MAX_LINE_BYTES)


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
    audience: str = CLI  # how refusals read: naming folders and options (CLI) or not (browser)
    reduced_decode: bool = True  # decode JPEGs reduced in the DCT to the model's input size
    decode: str = "auto"  # where JPEGs are decoded: "gpu" (the default on CUDA) or "cpu"
    video_limits: object | None = None  # analyzer.video.limits.VideoLimits; None: its defaults (env, hosted)
    video_fps: float = 1.0  # frames sampled per second of a video cell
    calibration: object | None = None  # models.calibration.Calibration of the encoder: adds CALIBRATED_COLUMNS

    def policy(self) -> ImagePolicy:
        roots = tuple(str(r) for r in self.image_roots) if self.image_roots is not None else None
        return ImagePolicy(roots, self.limits, self.audience)


class BatchCancelled(UserError):
    """The user cancelled; the rows written so far stay, and --resume continues after them."""


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


class Loaded(NamedTuple):
    pixels: object  # the model's input tensor, or None
    kind: str | None
    message: str | None


# --- row-level functions (shared by every engine) -------------------------------------------------

def is_video_cell(source) -> bool:
    """Whether a cell names a video: its path, or its URL's path, ends in a video suffix. Animated
    GIF and WebP stay images here (their first frame), as they always were in a batch."""
    if not isinstance(source, str):
        return False
    text = source.strip()
    if is_url(text):  # its path: what comes before the query and the fragment (split by hand: never raises)
        text = text.split("#", 1)[0].split("?", 1)[0]
    return text.lower().endswith(VIDEO_SUFFIXES)


class VideoScore(NamedTuple):
    cosines: tuple[float, float, int] | None  # (mean, max, frames)
    kind: str | None
    message: str | None


def score_video(source: str, caption: str, encoder, policy: ImagePolicy, options: BatchOptions) -> VideoScore:
    """(mean cosine, max cosine, frames) of a caption over a video's sampled frames, or the error
    kind and message. Never raises, as load_cell."""
    from clip_arena.analyzer.video.limits import VideoLimits
    from clip_arena.analyzer.video.report import video_text_similarity

    limits = options.video_limits or VideoLimits.for_settings(Settings())
    try:
        got = video_text_similarity(source, caption, encoder, policy=policy, limits=limits,
                                    sample_fps=options.video_fps)
        if not got.get("frames"):
            return VideoScore(None, "corrupt", "No frame of the video could be scored.")
        return VideoScore((float(got["mean_cosine"]), float(got["max_cosine"]), int(got["frames"])), None, None)
    except ImageLoadError as err:  # a VideoLoadError is one: its kind and its sentence
        message = str(err)
        if err.kind in ("outside_roots", "not_found") and policy._where():  # the CLI hint, as for an image
            message = message.rstrip(".") + policy._where() + "."
        return VideoScore(None, err.kind, message)
    except Exception as err:  # noqa: BLE001 - one row's problem must not stop the batch
        return VideoScore(None, "unreadable", f"The video could not be read ({type(err).__name__}).")

def input_size(encoder) -> int:
    """The side, in pixels, of the encoder's input (what a reduced JPEG decode must keep)."""
    from PIL import Image

    return int(encoder.image_transform(Image.new("RGB", (32, 32))).shape[-1])


def batch_transform(encoder, decode: str = "auto", device_is_cuda: bool | None = None):
    """What the fetch threads run per image: uint8 pixels (models.pixels) or, for "gpu" decoding, a
    ForDevice marker (JPEG bytes for the device); a model outside the CLIP recipe keeps its own
    float transform. `device_is_cuda`: where the encoding happens, when not this encoder's device."""
    from clip_arena.models.device import on_cuda
    from clip_arena.models.device_decode import ForDevice
    from clip_arena.models.pixels import decode_mode

    mode = decode_mode(decode, on_cuda(encoder.device) if device_is_cuda is None else device_is_cuda)
    if encoder.preprocess is None:
        return encoder.image_transform
    return ForDevice(encoder.preprocess) if mode == "gpu" else encoder.preprocess


def load_cell(source: str, policy: ImagePolicy, transform, target_size: int | None = None) -> Loaded:
    """One image cell -> its pixels tensor (or, for the device decoder, its prepared JPEG), or the
    error kind and message. Never raises: whatever the cell holds (NUL bytes, a 6,000-character
    path, `http://[::1`), it is that row's error."""
    from clip_arena.models.device_decode import ForDevice, prepare

    try:
        if not isinstance(source, str) or not source.strip():
            raise ImageLoadError("missing", "The image cell is empty.")
        if isinstance(transform, ForDevice):
            data, name = policy.read(source)
            return Loaded(prepare(data, name, policy.limits, [transform.preprocess]), None, None)
        return Loaded(policy.load(source, target_size=target_size, then=transform), None, None)
    except ImageLoadError as err:
        return Loaded(None, err.kind, str(err))
    except Exception as err:  # noqa: BLE001 - one row's problem must not stop the batch
        return Loaded(None, "unreadable", f"The image could not be read ({type(err).__name__}).")


def row_error(loaded_kind: str | None, loaded_message: str | None, caption: str) -> tuple[str | None, str]:
    """(kind, `error` cell) of a row from its image's outcome and its caption; kind None: scorable."""
    if loaded_kind:
        return loaded_kind, f"{loaded_kind}: {loaded_message}"
    if not caption.strip():
        return "missing_caption", "missing_caption: The caption cell is empty."
    return None, ""


def score_values(cosine: float) -> list[str]:
    """The score cells of one scored row: cosine, similarity, clip_score (one definition)."""
    s = scores_from_cosines(np.array([cosine]))
    return [f"{s['cosine'][0]:.6f}", f"{s['similarity'][0]:.4f}", f"{s['clip_score'][0]:.4f}"]


def score_columns(calibrated: bool = False) -> tuple[str, ...]:
    return SCORE_COLUMNS[:-1] + CALIBRATED_COLUMNS * calibrated + SCORE_COLUMNS[-1:]


RESERVED_COLUMNS = frozenset(SCORE_COLUMNS + CALIBRATED_COLUMNS)


def output_header(header: list[str], calibrated: bool = False) -> list[str]:
    """The output's header: the input's columns, then every score column (neutralised). An input column
    named like a score column is kept, renamed `input_<name>` (`input_input_<name>` if that is taken
    too...), so each row (input cells + all score cells) lines up with the header and a column named
    `cosine` is always this scorer's."""
    return neutralise_row(keep_clashing(header, RESERVED_COLUMNS) + list(score_columns(calibrated)))


def keep_clashing(header: list[str], reserved) -> list[str]:
    """`header` with each name in `reserved` renamed `input_<name>` (prefixed again while taken)."""
    taken = set(header) | set(reserved)
    renamed = []
    for name in header:
        if name in reserved:
            while name in taken:
                name = f"input_{name}"
            taken.add(name)
        renamed.append(name)
    return renamed


def calibrated_values(probability: float, percentile: float) -> list[str]:
    return [f"{float(probability):.4f}", f"{float(percentile):.1f}"]


def output_row(values: list[str], cosine: float | None, error: str, cosine_max: float | None = None,
               frames: int = 1, calibration=None, fused: tuple | None = None) -> list[str]:
    """One output row: the input cells, then the scores or the error, every cell neutralised. An
    image is one frame: its cosine_max is its cosine. With a `calibration`, its probability and
    percentile of the cosine follow; a fusion's row gives `fused` (probability, percentile) instead, or
    () when it has an error."""
    if cosine is not None and not error:
        best = cosine if cosine_max is None else cosine_max
        scores = score_values(cosine) + [f"{best:.6f}", str(frames)]
    else:
        scores = ["", "", "", "", ""]
    if fused is not None or calibration is not None:
        if error:
            scores += ["", ""]
        elif fused is not None:
            scores += calibrated_values(*fused)
        else:
            scores += calibrated_values(calibration.probability(cosine), calibration.percentile(cosine))
    return neutralise_row(list(values) + scores + [error])


def fit_record(record: list[str], width: int) -> tuple[list[str], str | None]:
    """A record padded or cut to the header's width, and an error when it had extra cells."""
    if len(record) > width:
        return record[:width], f"bad_row: The row has {len(record)} cells, the header {width}."
    return record + [""] * (width - len(record)), None


# --- the local engine -----------------------------------------------------------------------------

class _EmbeddingCache(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def read_records(path: Path, delimiter: str) -> Iterator[tuple[list[str], int]]:
    """(record, bytes of the file consumed up to its end), record by record, in bounded memory.
    Invalid UTF-8 past the sniffed start is replaced (U+FFFD), not fatal."""
    consumed = 0

    def lines(raw):
        nonlocal consumed
        first = True
        while True:
            line = raw.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_LINE_BYTES:
                raise UserError(f"A line of the CSV is longer than {MAX_LINE_BYTES // (1024 * 1024)} MB.")
            consumed += len(line)
            text = line.decode("utf-8", errors="replace")
            if first:
                text, first = text.removeprefix("\ufeff"), False
            yield text

    with open(path, "rb") as raw:
        reader = csv.reader(lines(raw), delimiter=delimiter)
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise UserError(f"The CSV could not be parsed at line {reader.line_num}: {err}.") from err
            yield record, consumed


def cut_to_complete(output: Path, width: int) -> int:
    """Truncate `output` after its last complete record (a crash can leave half a row) and return
    how many complete records it holds, header included. A record is complete when its line ends
    with a newline outside quotes and it has `width` cells."""
    records, good_end, pending, quotes, offset = 0, 0, [], 0, 0
    with open(output, "rb") as f:
        for line in f:
            offset += len(line)
            pending.append(line)
            quotes += line.count(b'"')
            if quotes % 2 or not line.endswith(b"\n"):
                continue
            text = b"".join(pending).decode("utf-8", errors="replace")
            pending, quotes = [], 0
            cells = next(csv.reader([text]), [])
            if len(cells) != width:
                break
            records, good_end = records + 1, offset
    if output.stat().st_size != good_end:
        with open(output, "r+b") as f:
            f.truncate(good_end)
    return records


def _fetch_chunk(pool: ThreadPoolExecutor, sources: list[str], policy: ImagePolicy, cache, transform,
                 target_size) -> dict:
    """Distinct sources not cached -> {source: Loaded}, fetched concurrently."""
    todo = [s for s in dict.fromkeys(sources) if s not in cache and not is_video_cell(s)]  # videos: _score_videos
    return dict(zip(todo, pool.map(lambda s: load_cell(s, policy, transform, target_size), todo)))


def _embed_images(sources: list[str], fetched: dict, encoder, options: BatchOptions, cache, policy,
                  target_size) -> None:
    """Put every source of the chunk in the cache: (vector, None, None) or (None, kind, message)."""
    import torch

    sources = [s for s in sources if not is_video_cell(s)]  # scored with their captions (_score_videos)
    for source in dict.fromkeys(sources):
        if source not in cache and source not in fetched:  # evicted since the fetch looked: load now
            fetched[source] = load_cell(source, policy, batch_transform(encoder, options.decode), target_size)
    todo = [s for s in dict.fromkeys(sources) if s not in cache]
    good = [s for s in todo if fetched[s].pixels is not None]
    for s in todo:
        if fetched[s].pixels is None:
            cache.put(s, (None, fetched[s].kind, fetched[s].message))
    for i in range(0, len(good), options.batch_size):
        batch = good[i : i + options.batch_size]
        payloads = [fetched[s].pixels for s in batch]
        if all(isinstance(p, torch.Tensor) for p in payloads):
            vectors = encoder.encode_pixels(torch.stack(payloads))
        else:  # JPEGs to decode on the device (models.device_decode), the rest decoded already
            batch, vectors = _decode_and_encode(batch, payloads, encoder, options, cache)
        for s, v in zip(batch, vectors):
            cache.put(s, (v, None, None))


def _decode_and_encode(batch: list[str], payloads: list, encoder, options: BatchOptions, cache):
    """Decode a batch's JPEGs on the encoder's device; an image no decoder can read is its row's
    error (put in the cache); -> (the sources encoded, their vectors)."""
    import torch

    from clip_arena.models.device_decode import decode_batch

    items = [p if not isinstance(p, torch.Tensor) else [p] for p in payloads]
    kept, pixels, failed = decode_batch(items, [encoder.preprocess], encoder.device, options.limits)
    for k, err in failed:
        cache.put(batch[k], (None, err.kind, str(err)))
    return ([batch[k] for k in kept], encoder.encode_raw(pixels[0])) if kept else ([], [])


def _encode_captions(encoder, captions: list[str]) -> dict:
    """{caption: vector} for the non-empty captions; a caption the tokenizer cannot take is left
    out (its row says so) instead of failing the chunk."""
    texts = [c for c in dict.fromkeys(captions) if c.strip()]
    if not texts:
        return {}
    try:
        return dict(zip(texts, encoder.encode_texts(texts)))
    except Exception:  # noqa: BLE001 - find the one caption at fault
        out = {}
        for text in texts:
            try:
                out[text] = encoder.encode_texts([text])[0]
            except Exception:  # noqa: BLE001
                pass
        return out


def _score_videos(pairs: list[tuple[str, str]], encoder, options: BatchOptions, cache, policy) -> None:
    """Put each distinct (video, caption) of the chunk in the cache as a VideoScore (a video is
    decoded once per caption; the same pair in a later chunk is not decoded again)."""
    for source, caption in dict.fromkeys(pairs):
        key = ("video", source, caption)
        if key in cache:
            cache.move_to_end(key)
        else:
            cache.put(key, score_video(source, caption, encoder, policy, options))


def _score_chunk(chunk: list[tuple[list[str], str | None]], fetched: dict, encoder, options: BatchOptions,
                 cache, report: BatchReport, image_index: int, caption_index: int, policy,
                 target_size) -> list[list[str]]:
    sources = [values[image_index] for values, _ in chunk]
    captions = [values[caption_index] for values, _ in chunk]
    _embed_images(sources, fetched, encoder, options, cache, policy, target_size)
    videos = [(s, c) for (_, bad), s, c in zip(chunk, sources, captions) if is_video_cell(s) and not bad and c.strip()]
    _score_videos(videos, encoder, options, cache, policy)
    text_vectors = _encode_captions(encoder, [c for s, c in zip(sources, captions) if not is_video_cell(s)])
    rows = []
    for (values, bad_row), source, caption in zip(chunk, sources, captions):
        video = is_video_cell(source)
        if video:
            got = cache.get(("video", source, caption)) or VideoScore(None, None, None)
            kind, message = got.kind, got.message
        else:
            vector, kind, message = cache[source]
        if bad_row:
            kind, error = "bad_row", bad_row
        else:
            kind, error = row_error(kind, message, caption)
        if kind is None and not video and caption not in text_vectors:
            kind, error = "bad_caption", "bad_caption: The caption could not be encoded."
        cosine, best, frames = None, None, 1
        if kind is None:
            if video:
                cosine, best, frames = got.cosines
            else:
                cosine = float(vector @ text_vectors[caption])
            report.scored += 1
        else:
            report.errors[kind] += 1
        rows.append(output_row(values, cosine, error, best, frames, options.calibration))
    report.rows += len(chunk)
    return rows


class _Shrink:
    """A decoded image with its shorter side cut to `side` (what CLIP's resize keeps), for a fusion's
    chunk: a chunk of full-size photos would hold gigabytes."""

    def __init__(self, side: int):
        self.side = side

    def __call__(self, image):
        short = min(image.size)
        if short <= self.side:
            return image
        scale = self.side / short
        return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), 3)  # bicubic


def _fused_video(source: str, caption: str, fusion, policy, options: BatchOptions) -> tuple:
    """((probability, percentile), None) of a video cell by every member's mean cosine, or (None, error)."""
    cosines = []
    for member in fusion.members:
        got = score_video(source, caption, member.encoder, policy, options)
        if got.cosines is None:
            return None, (got.kind, got.message)
        cosines.append(np.array([got.cosines[0]]))
    probability, percentile = fusion.fuse(cosines)
    return (float(probability[0]), float(percentile[0])), None


def _fused_pairs(fusion, images: list, captions: list[str]) -> list:
    """(probability, percentile) per pair, or None for a pair whose caption cannot be encoded."""
    try:
        return list(zip(*fusion.pair_scores(images, captions)))
    except Exception:  # noqa: BLE001 - find the pair at fault, as _encode_captions does
        out = []
        for image, caption in zip(images, captions):
            try:
                out.append(tuple(v[0] for v in fusion.pair_scores([image], [caption])))
            except Exception:  # noqa: BLE001
                out.append(None)
        return out


def _score_chunk_fused(chunk, fetched: dict, fusion, options: BatchOptions, report: BatchReport, image_index: int,
                       caption_index: int, policy) -> list[list[str]]:
    """A chunk scored by a fusion: each row's fused probability and percentile (no cosine of its own).
    `fetched` holds decoded images: every member transforms them its own way."""
    outcomes = []  # per row: (kind, error, fused or a pending index)
    pending_images, pending_captions = [], []
    for values, bad_row in chunk:
        source, caption = values[image_index], values[caption_index]
        video = is_video_cell(source)
        loaded = Loaded(None, None, None) if video else fetched[source]
        kind, error = ("bad_row", bad_row) if bad_row else row_error(loaded.kind, loaded.message, caption)
        if kind is None and video:
            fused, failed = _fused_video(source, caption, fusion, policy, options)
            if failed:
                kind, error = failed[0], f"{failed[0]}: {failed[1]}"
            outcomes.append([kind, error, fused])
        elif kind is None:
            outcomes.append([kind, error, len(pending_images)])
            pending_images.append(loaded.pixels)
            pending_captions.append(caption)
        else:
            outcomes.append([kind, error, None])
    scored = _fused_pairs(fusion, pending_images, pending_captions)
    rows = []
    for (values, _), (kind, error, fused) in zip(chunk, outcomes):
        if kind is None and isinstance(fused, int):
            fused = scored[fused]
            if fused is None:
                kind, error = "bad_caption", "bad_caption: The caption could not be encoded."
        if kind is None:
            report.scored += 1
        else:
            report.errors[kind] += 1
        rows.append(output_row(values, None, error, fused=fused if kind is None else ()))  # (): a fusion's, unscored
    report.rows += len(chunk)
    return rows


def open_input(input_path: Path, options: BatchOptions) -> tuple[Iterator, list[str], int, int]:
    """(the records after the header, the header, image column index, caption column index): the
    first step of every engine, so they all read a CSV alike."""
    delimiter, _ = sniff(input_path)
    records = read_records(input_path, delimiter)
    first = next(records, None)
    if first is None:
        raise UserError(f"{input_path.name} is empty.")
    header = [h.strip() for h in first[0]]
    image_col, caption_col = detect_columns(header, options.image_column, options.caption_column)
    return records, header, header.index(image_col), header.index(caption_col)


def score_csv(input_path: str | os.PathLike, output_path: str | os.PathLike, encoder, options: BatchOptions,
              progress: Callable[[float, str], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> BatchReport:
    """Score every row of `input_path` into `output_path` (input columns + cosine, similarity,
    clip_score, error; + probability and percentile with options.calibration). `encoder` may be a
    models.fusion.Fusion. Raises UserError only for problems of the whole file (columns, encoding),
    and BatchCancelled when `should_stop()` turns true (checked between chunks)."""
    from clip_arena.models.fusion import Fusion

    fusion = encoder if isinstance(encoder, Fusion) else None
    if options.calibration is not None and fusion is None:
        options.calibration.check(encoder)  # refused for another model's weights
    input_path, output_path = Path(input_path), Path(output_path)
    records, header, image_index, caption_index = open_input(input_path, options)
    report = BatchReport(image_column=header[image_index], caption_column=header[caption_index])
    out_header = output_header(header, calibrated=fusion is not None or options.calibration is not None)
    done = 0
    if options.resume and output_path.exists() and output_path.stat().st_size:
        with open(output_path, encoding="utf-8", errors="replace", newline="") as f:
            if next(csv.reader(f), None) != out_header:
                raise UserError(f"{output_path} was not written for this input; remove it or drop --resume.")
        done = report.skipped_resumed = max(0, cut_to_complete(output_path, len(out_header)) - 1)
    policy = options.policy()
    if fusion is None:
        transform = batch_transform(encoder, options.decode)
        target_size = input_size(encoder) if options.reduced_decode else None
    else:  # decoded images, shrunk to the largest member's input (memory): each member transforms them its own way
        target_size = max(input_size(m.encoder) for m in fusion.members)
        transform = _Shrink(target_size)
    cache = _EmbeddingCache(options.cache_size)
    start = time.perf_counter()
    size = max(1, input_path.stat().st_size)
    seen = 0

    def chunks():
        nonlocal seen
        chunk, consumed = [], 0
        for record, consumed in records:
            if not record:  # a blank line is not a row
                continue
            seen += 1
            if seen <= done:
                continue
            chunk.append(fit_record(record, len(header)))
            if len(chunk) == options.chunk_rows:
                yield chunk, consumed
                chunk = []
        if chunk:
            yield chunk, consumed

    with open(output_path, "a" if done else "w", encoding="utf-8", newline="") as out, \
            ThreadPoolExecutor(options.fetch_workers, thread_name_prefix="fetch") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="fetch-ahead") as ahead:
        writer = safe_writer(out)
        if not done:
            writer.writerow(out_header)

        def finish(chunk, consumed, future):
            if fusion is not None:
                writer.writerows(_score_chunk_fused(chunk, future.result(), fusion, options, report, image_index,
                                                    caption_index, policy))
            else:
                writer.writerows(_score_chunk(chunk, future.result(), encoder, options, cache, report,
                                              image_index, caption_index, policy, target_size))
            out.flush()
            os.fsync(out.fileno())  # a chunk on disk is a chunk --resume will not redo
            if progress:
                progress(min(1.0, consumed / size), f"{report.rows + done:,} rows scored")

        pending, stopped = None, False
        for chunk, consumed in chunks():
            if should_stop and should_stop():
                stopped = True
                break
            # fetch this chunk while the previous one is encoded
            future = ahead.submit(_fetch_chunk, pool, [v[image_index] for v, _ in chunk], policy, cache,
                                  transform, target_size)
            if pending is not None:
                finish(*pending)
            pending = (chunk, consumed, future)
        if pending is not None:
            finish(*pending)
    report.seconds = time.perf_counter() - start
    if stopped:
        raise BatchCancelled(f"Cancelled after {report.rows + done:,} rows; the rows scored so far are in "
                             f"{output_path.name}.")
    return report
