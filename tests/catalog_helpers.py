"""Small synthetic catalogs for tests: random unit vectors with known structure."""

from __future__ import annotations

import numpy as np
from PIL import Image

from clip_arena.index.catalog import build_table, catalog_meta, write_catalog

ARENA_METHODS = ("alphamodel", "omegamodel")  # names that appear nowhere else on a page


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def write_synthetic_catalog(path, n=200, dim=16, methods=("base", "finetuned"), dtype="float32", categories=4):
    ids = [f"img{i:05d}" for i in range(n)]
    columns = {
        "image_id": ids,
        "image_uri": [f"images/{i}.png" for i in ids],
        "caption": [f"caption {i}" for i in range(n)],
        "split": ["test" if i % 5 == 0 else "train" for i in range(n)],
        "category": [f"cat{i % categories}" for i in range(n)],
    }
    embeddings = {m: unit_vectors(n, dim, seed=k) for k, m in enumerate(methods)}
    table = build_table(columns, embeddings, dtype)
    meta = catalog_meta({m: f"test:{m}" for m in methods}, {m: dim for m in methods})
    write_catalog(path, table, meta)
    return embeddings


def write_image_catalog(folder, n=40, methods=ARENA_METHODS):
    """A catalog whose images exist on disk (for the app), with test split and categories."""
    (folder / "images").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.new("RGB", (48, 48), tuple(int(c) for c in rng.integers(0, 255, 3))).save(folder / "images" / f"{i}.png")
    columns = {"image_id": [f"img{i}" for i in range(n)], "image_uri": [f"images/{i}.png" for i in range(n)],
               "caption": [f"square {i}" for i in range(n)], "split": ["test" if i < 10 else "train" for i in range(n)],
               "category": [f"group{i % 2}" for i in range(n)]}
    table = build_table(columns, {m: unit_vectors(n, 8, seed=k) for k, m in enumerate(methods)})
    write_catalog(folder / "catalog.parquet", table, catalog_meta({m: m for m in methods}, {m: 8 for m in methods}))
    return folder / "catalog.parquet"
