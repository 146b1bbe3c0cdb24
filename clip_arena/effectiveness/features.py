"""Feature columns per modality, named `<modality>__<name>` so a modality can be dropped whole:
tab (the CSV's own columns), img / txt (CLIP embeddings), ana (numbers from the content analysis),
vid (a video's pace, first-brand time, text alignment over time and loudness).

A video row (its image cell ends in a video suffix, as in Batch CSV) is analysed over time
(analyzer.video): its img embedding is the mean of its keyframes', its ana numbers the mean over
its keyframes of the image sections' numbers (the text sections as for an image), and it alone has
vid numbers. The vid columns exist only when the training data has videos, so images-only data
gives exactly the features it always did."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from clip_arena.models.per_encoder import per_encoder
from clip_arena.core.errors import UserError

MODALITIES = ("tab", "img", "txt", "ana", "vid")
VIDEO_FEATURES = ("vid__cuts_per_second", "vid__first_brand_s", "vid__brand_seen", "vid__alignment_mean",
                  "vid__alignment_max", "vid__loudness_lufs", "vid__duration_s")
# Sections whose numbers become features: cheap and offline; OCR is opt-in (about 1 s per image).
ANALYSIS_SECTIONS = ("alignment", "sentiment", "entities", "image_properties", "text_properties")
MAX_CATEGORIES = 250  # HistGradientBoosting takes at most 255 categories per feature


def modality(column: str) -> str:
    return column.split("__", 1)[0]


def flatten_numbers(sections: dict) -> dict[str, float]:
    """Every number in the report's ok/degraded sections: bools as 0/1, lists by their length,
    nested dicts by dotted name. Fields differ per backend, so each backend yields its own features."""
    out: dict[str, float] = {}

    def visit(prefix: str, value) -> None:
        if isinstance(value, bool):
            out[prefix] = float(value)
        elif isinstance(value, (int, float)) and math.isfinite(value):
            out[prefix] = float(value)
        elif isinstance(value, list):
            out[f"{prefix}_count"] = float(len(value))
        elif isinstance(value, dict):
            for key, sub in value.items():
                visit(f"{prefix}.{key}", sub)

    for name, sec in sections.items():
        if sec.get("status") in ("ok", "degraded"):
            for key, value in sec.items():
                if key not in ("status", "backend", "reason"):
                    visit(f"ana__{name}.{key}", value)
    return out


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def brand_first_seen(text_seen: list[dict], brand: str | None) -> float | None:
    """When the brand's name was first read on screen (letters and digits compared, case and
    spacing ignored, as the rubric's Branding check does), or None."""
    key = _squash(brand or "")
    hits = [e["first_s"] for e in text_seen if key and key in _squash(e.get("text", ""))]
    return min(hits) if hits else None


def video_numbers(report: dict, brand: str | None) -> dict[str, float]:
    """The vid features of a video report. Unknown is missing (NaN), never 0: no brand given or no
    OCR tier ran (brand), no text (alignment), no audio track (loudness)."""
    nan = float("nan")
    video = report["video"]
    ocr_ran = report["sections"].get("ocr", {}).get("status") in ("ok", "degraded")
    first = brand_first_seen(video.get("text_seen") or [], brand) if brand and ocr_ran else None
    known_brand = bool(brand and _squash(brand) and ocr_ran)
    cosines = [p["cosine"] for p in video.get("alignment") or []]
    loud = video.get("loudness_lufs")

    def num(value) -> float:
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else nan

    return {"vid__cuts_per_second": num(video.get("cuts_per_second")),
            "vid__first_brand_s": first if first is not None else nan,
            "vid__brand_seen": float(first is not None) if known_brand else nan,
            "vid__alignment_mean": float(np.mean(cosines)) if cosines else nan,
            "vid__alignment_max": float(np.max(cosines)) if cosines else nan,
            "vid__loudness_lufs": num(loud), "vid__duration_s": num(video.get("duration_s"))}


def video_analysis_numbers(sections: dict, wanted) -> dict[str, float]:
    """ana numbers of a video report under the image features' names: a keyframe section's numbers
    averaged over the keyframes where it ran, a text section's as they are."""
    out: dict[str, float] = {}
    for name, sec in sections.items():
        if name not in wanted or sec.get("status") not in ("ok", "degraded"):
            continue
        if "keyframes" not in sec:
            out.update(flatten_numbers({name: sec}))
            continue
        per_frame = [flatten_numbers({name: {**{k: v for k, v in kf.items() if k not in ("time_s", "shot")},
                                             "status": kf.get("status", sec["status"])}})
                     for kf in sec["keyframes"]]
        for key in dict.fromkeys(k for frame in per_frame for k in frame):
            out[key] = float(np.mean([frame[key] for frame in per_frame if key in frame]))
    return out


def keyframe_embedding(encoder, report: dict) -> np.ndarray | None:
    """The mean of the keyframes' CLIP embeddings (the files the analysis wrote), normalised."""
    from PIL import Image

    paths = [k["path"] for k in report["video"].get("keyframes") or [] if k.get("path")]
    if not paths:
        return None
    images = []
    for path in paths:
        with Image.open(path) as im:
            images.append(im.convert("RGB"))
    mean = encoder.encode_images(images).mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def analyse_video_cell(source, text: str, brand: str | None, settings, model: str, policy, sections) -> tuple:
    """(img vector or None, ana numbers, vid numbers) of one video; VideoLoadError when unusable."""
    import tempfile

    from clip_arena.analyzer.video.report import analyze_video
    from clip_arena.models import get_encoder

    with tempfile.TemporaryDirectory(prefix="clip-arena-keyframes-") as frames:
        report = analyze_video(source, text, settings, model=model, brand=brand, policy=policy, frames_dir=frames)
        vector = keyframe_embedding(get_encoder(model, settings.device, settings.precision), report)
    return vector, video_analysis_numbers(report["sections"], sections), video_numbers(report, brand)


def embedding_columns(prefix: str, vectors: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(vectors, columns=[f"{prefix}__{i}" for i in range(vectors.shape[1])])


def tabular_schema(df: pd.DataFrame, columns: list[str]) -> dict[str, str | list[str]]:
    """{column: "numeric" or its sorted categories}, learned from the training CSV."""
    schema: dict[str, str | list[str]] = {}
    for col in columns:
        values = df[col]
        if (values.isna() | pd.to_numeric(values, errors="coerce").notna()).all():
            schema[col] = "numeric"
            continue
        categories = sorted(values.dropna().astype(str).unique())
        if len(categories) > MAX_CATEGORIES:
            raise UserError(f"Column {col!r} has {len(categories)} distinct values; a category column can have "
                            f"at most {MAX_CATEGORIES}. Leave it out with --tabular.")
        schema[col] = categories
    return schema


def tabular_frame(df: pd.DataFrame, schema: dict) -> pd.DataFrame:
    """The tabular features; a column absent here, or a category unseen in training, is missing."""
    out = pd.DataFrame(index=df.index)
    for col, kind in schema.items():
        values = df[col] if col in df else pd.Series(None, index=df.index, dtype=object)
        if kind == "numeric":
            out[f"tab__{col}"] = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            as_text = values.map(lambda v: None if pd.isna(v) else str(v))
            out[f"tab__{col}"] = pd.Categorical(as_text, categories=kind)
    return out


def creative_features(df: pd.DataFrame, image_column: str | None, text_column: str | None, schema: dict,
                      model: str, settings, sections: tuple[str, ...] = ANALYSIS_SECTIONS,
                      image_roots=None, progress=None, brand_column: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One feature row per creative, and one line per image or video that could not be read (its
    row's image features are then missing, not the row). `brand_column`: each video's brand, for
    its first-brand time."""
    from clip_arena.analyzer.batch import is_video_cell
    from clip_arena.analyzer.content.report import analyze
    from clip_arena.analyzer.images import load_image
    from clip_arena.core.errors import ImageLoadError
    from clip_arena.models import get_encoder

    encoder = get_encoder(model, settings.device, settings.precision)
    n = len(df)
    images, problems = [None] * n, []
    cells = df[image_column].tolist() if image_column else [None] * n
    videos = [i for i, cell in enumerate(cells) if is_video_cell(cell)]
    video_set = set(videos)
    if image_column:
        for i, source in enumerate(cells):
            if i in video_set:
                continue
            if isinstance(source, str) and source.strip():
                try:
                    images[i] = load_image(source, settings.limits, image_roots)
                except ImageLoadError as err:
                    problems.append(f"row {i + 1}: {err}")
            if progress:
                progress(i + 1, 2 * n, "reading images")
    texts = [t.strip() if isinstance(t, str) else "" for t in (df[text_column] if text_column else [""] * n)]
    dim = embedding_dim(encoder)
    img = embedding_rows(encoder.encode_images, images, dim)
    txt = embedding_rows(encoder.encode_texts, texts, dim)
    video_rows = _video_rows(df, cells, videos, texts, brand_column, settings, model, sections, image_roots, img,
                             problems)
    analysed = []
    for i in range(n):
        if i in video_rows:
            analysed.append(video_rows[i][0])
        else:
            vector = img[i] if images[i] is not None else None
            report = analyze(images[i], texts[i], settings, model=model, only=set(sections), image_vector=vector)
            analysed.append(flatten_numbers(report["sections"]))
        if progress:
            progress(n + i + 1, 2 * n, "analysing")
    vid = pd.DataFrame([{k: video_rows[i][1].get(k, np.nan) if i in video_rows else np.nan for k in VIDEO_FEATURES}
                        for i in range(n)]) if videos else None
    return feature_frame(tabular_frame(df, schema), img if image_column else None,
                         txt if text_column else None, analysed, vid), problems


def _video_rows(df, cells, videos, texts, brand_column, settings, model, sections, image_roots, img,
                problems) -> dict[int, tuple[dict, dict]]:
    """{row: (its ana numbers, its vid numbers)} for the rows whose cell is a video (each distinct video, text
    and brand analysed once); a video's keyframe embedding goes into `img`."""
    from clip_arena.analyzer.policy import ImagePolicy
    from clip_arena.core.errors import ImageLoadError

    policy = ImagePolicy(tuple(str(r) for r in image_roots) if image_roots is not None else None, settings.limits)
    done: dict[tuple, tuple] = {}
    out = {}
    for i in videos:
        brand = df[brand_column].iloc[i] if brand_column else None
        brand = brand.strip() if isinstance(brand, str) and brand.strip() else None
        key = (cells[i].strip(), texts[i], brand)
        if key not in done:
            try:
                done[key] = analyse_video_cell(key[0], texts[i], brand, settings, model, policy, sections)
            except ImageLoadError as err:  # a VideoLoadError: that row's video features are missing
                done[key] = None
                problems.append(f"row {i + 1}: {err}")
        if done[key] is None:
            continue
        vector, ana, vid = done[key]
        if vector is not None:
            img[i] = vector
        out[i] = (ana, vid)
    return out


@per_encoder
def embedding_dim(encoder) -> int:
    return int(encoder.encode_texts(["x"]).shape[1])


def embedding_rows(encode, items: list, dim: int) -> np.ndarray:
    """encode(present items), one row per item; a missing image (None) or an empty text is a row
    of NaN, a missing modality that the regressor takes as it is."""
    out = np.full((len(items), dim), np.nan, dtype=np.float32)
    rows = [i for i, item in enumerate(items) if item is not None and item != ""]
    if rows:
        out[rows] = encode([items[i] for i in rows])
    return out


def feature_frame(tabular: pd.DataFrame, img: np.ndarray | None, txt: np.ndarray | None,
                  analysed: list[dict], vid: pd.DataFrame | None = None) -> pd.DataFrame:
    """The columns of every modality side by side, one row per creative."""
    parts = [tabular.reset_index(drop=True)]
    if img is not None:
        parts.append(embedding_columns("img", img))
    if txt is not None:
        parts.append(embedding_columns("txt", txt))
    parts.append(pd.DataFrame(analysed))
    if vid is not None:
        parts.append(vid.reset_index(drop=True))
    return pd.concat(parts, axis=1)
