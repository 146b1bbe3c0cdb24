"""Feature columns per modality, named `<modality>__<name>` so a modality can be dropped whole:
tab (the CSV's own columns), img / txt (CLIP embeddings), ana (numbers from the content analysis)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from clip_arena.core.errors import UserError

MODALITIES = ("tab", "img", "txt", "ana")
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
                      image_roots=None, progress=None) -> tuple[pd.DataFrame, list[str]]:
    """One feature row per creative, and one line per image that could not be read (its row's
    image features are then missing, not the row)."""
    from clip_arena.analyzer.content.report import analyze
    from clip_arena.analyzer.images import load_image
    from clip_arena.core.errors import ImageLoadError
    from clip_arena.models import get_encoder

    encoder = get_encoder(model, settings.device, settings.precision)
    n = len(df)
    images, problems = [None] * n, []
    if image_column:
        for i, source in enumerate(df[image_column].tolist()):
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
    analysed = []
    for i in range(n):
        vector = img[i] if images[i] is not None else None
        report = analyze(images[i], texts[i], settings, model=model, only=set(sections), image_vector=vector)
        analysed.append(flatten_numbers(report["sections"]))
        if progress:
            progress(n + i + 1, 2 * n, "analysing")
    return feature_frame(tabular_frame(df, schema), img if image_column else None,
                         txt if text_column else None, analysed), problems


@lru_cache(maxsize=8)
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
                  analysed: list[dict]) -> pd.DataFrame:
    """The columns of every modality side by side, one row per creative."""
    parts = [tabular.reset_index(drop=True)]
    if img is not None:
        parts.append(embedding_columns("img", img))
    if txt is not None:
        parts.append(embedding_columns("txt", txt))
    parts.append(pd.DataFrame(analysed))
    return pd.concat(parts, axis=1)
