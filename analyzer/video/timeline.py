"""What happens over time: frames sampled at a fixed rate and scored by CLIP in batches, text on
screen read by OCR (at most ocr_fps, and only when the picture changed since the last read) with the
time each line was first and last seen, one keyframe per shot, and the contact sheet."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

ANALYSIS_SIDE = 640  # sampled frames: enough for OCR of on-screen text and far more than CLIP's 224
BATCH = 16  # frames per CLIP batch
CHANGE = 1.5  # mean absolute change (0..255) of the small frame that makes OCR read again
MIN_CONFIDENCE = 0.5  # OCR lines read with less confidence are left out of text_seen
CANDIDATES = 16  # keyframe candidates kept per shot (thinned evenly when more come)


class Sampler:
    """take(t): whether the frame at t is the next one to sample at `rate` per second."""

    def __init__(self, rate: float):
        self.every, self.next = 1.0 / rate, 0.0

    def take(self, t: float) -> bool:
        if t + 1e-6 < self.next:
            return False
        while self.next <= t + 1e-6:
            self.next += self.every
        return True


class AlignmentTrack:
    """Sampled frames' CLIP embeddings, encoded BATCH at a time as the video streams by."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.times: list[float] = []
        self.vectors: list[np.ndarray] = []
        self._pending: list[tuple[float, Image.Image]] = []

    def push(self, t: float, image: Image.Image) -> None:
        self._pending.append((t, image))
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        vectors = self.encoder.encode_images([im for _, im in self._pending])
        self.times += [t for t, _ in self._pending]
        self.vectors += list(vectors)
        self._pending = []

    def cosines(self, text: str) -> list[dict]:
        self.flush()
        if not self.vectors or not text.strip():
            return []
        text_vec = self.encoder.encode_texts([text])[0]
        values = np.stack(self.vectors) @ text_vec
        return [{"time_s": round(t, 3), "cosine": round(float(v), 4)} for t, v in zip(self.times, values)]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def rows(lines: list[dict]) -> list[str]:
    """OCR boxes on one row joined left to right (RapidOCR may read "SHOP NOW" as two boxes): boxes
    whose vertical centres are within half a box height of each other; unsure reads left out."""
    boxes = []
    for line in lines:
        conf = line.get("confidence", (line.get("tesseract_conf") or 0) / 100)
        text = _norm(line.get("text", ""))
        if text and conf >= MIN_CONFIDENCE and line.get("box"):
            ys = [p[1] for p in line["box"]]
            boxes.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(p[0] for p in line["box"]), text))
    out: list[list] = []
    for centre, height, x, text in sorted(boxes):
        if out and abs(centre - out[-1][0]) <= max(height, out[-1][1]) / 2:
            out[-1][2].append((x, text))
        else:
            out.append([centre, height, [(x, text)]])
    return [" ".join(t for _, t in sorted(parts)) for _, _, parts in out]


@dataclass
class OcrTrack:
    """text_seen: each line read on screen with its first and last time."""

    settings: object
    every_s: float
    seen: dict[str, dict] = field(default_factory=dict)
    status: dict | None = None  # the OCR section of the last read (backend, or why none could run)
    reads: int = 0
    history: list[tuple[float, dict]] = field(default_factory=list)  # (time, the OCR section read then)
    _last_t: float | None = None
    _last_small: np.ndarray | None = None
    _on_screen: list[str] = field(default_factory=list)

    def push(self, t: float, small: np.ndarray, image_of) -> None:
        """`image_of()` gives the frame at analysis size, only when a read is due."""
        if self.status is not None and self.status["status"] == "unavailable":
            return  # no tier can run here: do not ask again on every frame
        changed = self._last_small is None or float(np.abs(small.astype(np.int16) - self._last_small).mean()) > CHANGE
        due = self._last_t is None or t - self._last_t >= self.every_s - 1e-6
        if changed and due:
            self._read(t, image_of())
            self._last_small = small.astype(np.int16)
            self._last_t = t
        elif not changed:
            for key in self._on_screen:  # still on screen while the picture has not changed
                self.seen[key]["last_s"] = round(t, 3)

    def _read(self, t: float, image: Image.Image) -> None:
        from clip_arena.analyzer.content import ocr
        from clip_arena.analyzer.content.component import Context
        from clip_arena.analyzer.content.report import run_guarded

        ctx = Context(image=image, text="", settings=self.settings, model="")
        self.status = run_guarded(ocr.component(), ctx)
        self.reads += 1
        self.history.append((t, self.status))
        self._on_screen = []
        for text in rows(self.status.get("lines", [])):
            key = text.lower()
            entry = self.seen.setdefault(key, {"text": text, "first_s": round(t, 3), "last_s": round(t, 3)})
            entry["last_s"] = round(t, 3)
            self._on_screen.append(key)

    def section_at(self, t: float) -> dict | None:
        """The OCR section of the picture at t: the last read at or before it (frames are read again
        whenever they change, so the keyframes need no read of their own)."""
        before = [sec for when, sec in self.history if when <= t + 1e-6]
        return before[-1] if before else None

    def text_seen(self) -> list[dict]:
        return sorted(self.seen.values(), key=lambda e: (e["first_s"], e["text"]))


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


class KeyframePicker:
    """One keyframe per shot: of the frames kept for the shot (its first, and the sampled ones, thinned
    evenly past CANDIDATES), the one nearest the shot's middle. Kept as JPEG bytes (bounded memory)."""

    def __init__(self):
        self.keyframes: list[tuple[float, bytes]] = []  # (time, jpeg) per shot, in order
        self._candidates: list[tuple[float, Image.Image]] = []
        self._start = 0.0

    def push(self, t: float, image: Image.Image) -> None:
        self._candidates.append((t, image))
        if len(self._candidates) > CANDIDATES:
            self._candidates = self._candidates[::2]

    def cut(self, t: float) -> None:
        """The shot that started at self._start ends at t."""
        if self._candidates:
            middle = (self._start + t) / 2
            when, image = min(self._candidates, key=lambda c: abs(c[0] - middle))
            self.keyframes.append((when, jpeg(image)))
        self._candidates, self._start = [], t


def contact_sheet(keyframes: list[tuple[float, Image.Image]], columns: int = 4, width: int = 240) -> Image.Image:
    """The keyframes in a grid, each with its time."""
    if not keyframes:
        return Image.new("RGB", (width, width * 9 // 16), "white")
    first = keyframes[0][1]
    height = max(1, round(width * first.height / first.width))
    rows = -(-len(keyframes) // columns)
    cols = min(columns, len(keyframes))
    sheet = Image.new("RGB", (cols * width, rows * (height + 18)), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (t, image) in enumerate(keyframes):
        x, y = (n % columns) * width, (n // columns) * (height + 18)
        thumb = image.copy()
        thumb.thumbnail((width, height))
        sheet.paste(thumb, (x + (width - thumb.width) // 2, y))
        draw.text((x + 4, y + height + 3), f"shot {n + 1}  {t:.1f} s", fill=(0, 0, 0))
    return sheet
