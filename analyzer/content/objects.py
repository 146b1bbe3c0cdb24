"""Objects in the image: DETR when its weights can be loaded (field `detections`, COCO labels);
offline, faces and people with OpenCV's Haar cascades (fields `faces`, `people`), which ship inside
opencv-python-headless 4.x."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import numpy as np

from clip_arena.analyzer.content import hub
from clip_arena.analyzer.content.component import Backend, Component, Context, Unavailable

DETR_THRESHOLD = 0.7  # DETR's own demo threshold
HAAR_SIDE = 640  # detect on at most this longest side: time grows with pixels (24 px faces stay findable)


def _load_detr(name: str, device: str):
    from transformers import pipeline

    return pipeline("object-detection", model=name, device=device)


def with_detr(ctx: Context) -> dict:
    detect = hub.load("objects", _load_detr, ctx.settings.device or "cpu")
    found = [d for d in detect(ctx.image, threshold=DETR_THRESHOLD)]
    detections = [{"label": d["label"], "score": round(float(d["score"]), 4),
                   "box": [int(d["box"][k]) for k in ("xmin", "ymin", "xmax", "ymax")]} for d in found]
    return {"detections": detections, "counts": dict(Counter(d["label"] for d in detections))}


@lru_cache(maxsize=4)
def _cascade(file: str):
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + file)
    if cascade.empty():
        raise Unavailable(f"OpenCV has no {file} (opencv 5 dropped the Haar cascades; install opencv-python-headless<5)")
    return cascade


def with_haar(ctx: Context) -> dict:
    import cv2

    if not hasattr(cv2, "data"):
        raise Unavailable("this OpenCV build ships no Haar cascades (install opencv-python-headless<5)")
    grey = cv2.cvtColor(ctx.rgb, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, HAAR_SIDE / max(grey.shape))
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)

    def boxes(file: str, min_size: tuple[int, int]) -> list[list[int]]:
        hits = _cascade(file).detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=min_size)
        return [[int(round(v / scale)) for v in (x, y, x + w, y + h)] for x, y, w, h in np.reshape(hits, (-1, 4))]

    faces = boxes("haarcascade_frontalface_default.xml", (24, 24))
    people = boxes("haarcascade_fullbody.xml", (32, 64))
    return {"faces": len(faces), "face_boxes": faces, "people": len(people), "people_boxes": people}


def component() -> Component:
    name = hub.model_id("objects")
    return Component(
        name="objects",
        needs_image=True,
        backends=(
            Backend(hub.backend_name("objects"), with_detr, modules=("transformers", "timm"), models=(name,)),
            Backend("opencv-haar", with_haar, modules=("cv2",)),
        ),
    )
