"""Text in the image: RapidOCR with the ONNX models bundled in rapidocr-onnxruntime 1.4 (no
download), or Debian's tesseract. `text_area_ratio` is the share of the image's pixels inside
the detected text boxes (their union). Line confidences keep each engine's scale and name:
`confidence` is RapidOCR's (0..1), `tesseract_conf` tesseract's (0..100)."""

from __future__ import annotations

import csv
import io
import subprocess
import threading
from functools import lru_cache

import numpy as np

from clip_arena.analyzer.content.component import Backend, Component, Context, Unavailable

TESSERACT_TIMEOUT_S = 60
_ocr_lock = threading.Lock()  # one onnxruntime session, used by one caller at a time


@lru_cache(maxsize=1)
def _rapidocr():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def area_ratio(boxes: list[np.ndarray], shape: tuple[int, int]) -> float:
    import cv2

    mask = np.zeros(shape, np.uint8)
    for box in boxes:
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    return round(float(mask.mean()), 4)


def with_rapidocr(ctx: Context) -> dict:
    with _ocr_lock:
        result, _ = _rapidocr()(ctx.rgb)
    result = result or []
    lines = [{"text": text, "confidence": round(float(conf), 4),
              "box": [[int(round(x)), int(round(y))] for x, y in box]} for box, text, conf in result]
    return {"text": "\n".join(line["text"] for line in lines), "lines": lines,
            "text_area_ratio": area_ratio([np.array(b) for b, _, _ in result], ctx.rgb.shape[:2])}


def with_tesseract(ctx: Context) -> dict:
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(ctx.rgb).save(png, format="PNG")
    try:
        done = subprocess.run(["tesseract", "stdin", "stdout", "tsv"], input=png.getvalue(),
                              capture_output=True, timeout=TESSERACT_TIMEOUT_S, check=True)
    except subprocess.TimeoutExpired as err:
        raise Unavailable(f"tesseract took longer than {TESSERACT_TIMEOUT_S} s") from err
    except subprocess.CalledProcessError as err:
        raise Unavailable(f"tesseract failed: {err.stderr.decode(errors='replace').strip()[:200]}") from err
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode("utf-8", errors="replace")),
                               delimiter="\t", quoting=csv.QUOTE_NONE))
    words: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get("level") == "5" and (row.get("text") or "").strip():
            key = (row["block_num"], row["par_num"], row["line_num"])
            words.setdefault(key, []).append(row)
    lines, boxes = [], []
    for group in words.values():
        x0 = min(int(w["left"]) for w in group)
        y0 = min(int(w["top"]) for w in group)
        x1 = max(int(w["left"]) + int(w["width"]) for w in group)
        y1 = max(int(w["top"]) + int(w["height"]) for w in group)
        box = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        conf = np.mean([float(w["conf"]) for w in group])
        lines.append({"text": " ".join(w["text"] for w in group), "tesseract_conf": round(float(conf), 1),
                      "box": box})
        boxes.append(np.array(box))
    return {"text": "\n".join(line["text"] for line in lines), "lines": lines,
            "text_area_ratio": area_ratio(boxes, ctx.rgb.shape[:2])}


def component() -> Component:
    return Component(
        name="ocr",
        needs_image=True,
        backends=(
            Backend("rapidocr-onnxruntime", with_rapidocr, modules=("rapidocr_onnxruntime", "cv2")),
            Backend("tesseract", with_tesseract, binaries=("tesseract",), modules=("cv2",)),
        ),
    )
