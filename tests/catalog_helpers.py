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


def write_photos(folder, n=12, size=(1024, 768), seed=0):
    """Photo-sized JPEGs (gradients with discs; landscape and portrait), as a person's own pictures
    are: not emoji, not thumbnails. Returns their paths."""
    from PIL import ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = size if i % 3 else size[::-1]
        a, b = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
        t = np.linspace(0, 1, w)[None, :, None]
        img = Image.fromarray((a * (1 - t) + b * t).astype(np.uint8).repeat(h, 0))
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(w // 25, w // 5))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        paths.append(folder / f"photo_{i:02d}.jpg")
        img.save(paths[-1], quality=85)
    return paths


def write_photo_catalog(folder, n=12, tests=4, methods=ARENA_METHODS):
    """A catalog over write_photos' pictures: `tests` test queries, two methods of random vectors."""
    write_photos(folder / "images", n)
    columns = {"image_id": [f"photo_{i:02d}" for i in range(n)],
               "image_uri": [f"images/photo_{i:02d}.jpg" for i in range(n)],
               "split": ["test" if i < tests else "train" for i in range(n)]}
    table = build_table(columns, {m: unit_vectors(n, 8, seed=k) for k, m in enumerate(methods)})
    write_catalog(folder / "catalog.parquet", table, catalog_meta({m: m for m in methods}, {m: 8 for m in methods}))
    return folder / "catalog.parquet"
