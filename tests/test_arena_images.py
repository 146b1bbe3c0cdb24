"""Catalog images served by row (arena/images.py): only real image files reach the served folder."""

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from clip_arena.arena.images import CatalogImages
from catalog_helpers import unit_vectors
from clip_arena.index.catalog import build_table, catalog_meta, read_catalog, write_catalog


def _catalog(folder: Path, uris: list[str]):
    n = len(uris)
    table = build_table({"image_id": [f"i{i}" for i in range(n)], "image_uri": uris},
                        {"base": unit_vectors(n, 4), "finetuned": unit_vectors(n, 4, seed=1)})
    write_catalog(folder / "catalog.parquet", table, catalog_meta({"base": "b", "finetuned": "f"},
                                                                  {"base": 4, "finetuned": 4}))
    return read_catalog(folder / "catalog.parquet")


def test_images_by_row_and_nothing_else(tmp_path):
    cat_dir, outside, served = tmp_path / "cat", tmp_path / "elsewhere", tmp_path / "served"
    cat_dir.mkdir(), outside.mkdir()
    Image.new("RGB", (8, 8), "red").save(cat_dir / "red.png")
    Image.new("RGB", (8, 8), "blue").save(outside / "blue.jpg")
    (cat_dir / "votes.png").write_bytes(b"SQLite format 3\x00" + bytes(100))  # a database named like an image
    (cat_dir / "drawing.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    os.symlink(cat_dir / "catalog.parquet", cat_dir / "link.png")
    uris = ["red.png", str(outside / "blue.jpg"), "catalog.parquet", "votes.png", "drawing.svg", "link.png",
            "missing.png", "https://example.com/a.jpg", "../cat/red.png"]
    images = CatalogImages(_catalog(cat_dir, uris), served)
    paths = [images(row) for row in range(len(uris))]
    assert paths[7] == "https://example.com/a.jpg"  # fetched by the browser from its own host
    local = [Path(p) for i, p in enumerate(paths) if i != 7]
    assert all(p.parent == images.folder and images.folder.is_relative_to(served) for p in local)
    assert Path(paths[0]).read_bytes() == (cat_dir / "red.png").read_bytes()
    assert Path(paths[1]).read_bytes() == (outside / "blue.jpg").read_bytes()  # images outside the folder work
    assert Path(paths[8]).read_bytes() == (cat_dir / "red.png").read_bytes()
    placeholder = {paths[i] for i in (2, 3, 4, 5, 6)}
    assert len(placeholder) == 1 and Path(placeholder.pop()).name == "missing.png"
    parquet = (cat_dir / "catalog.parquet").read_bytes()
    for p in images.folder.iterdir():  # nothing in the served folder but images
        assert p.read_bytes() != parquet and Image.open(p).format in {"PNG", "JPEG"}
    assert images(0) == paths[0]  # linked once, then remembered


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1,
               max_size=30))
def test_any_image_uri_serves_an_image_a_url_or_the_placeholder(tmp_path, uri):
    folder = tmp_path / "h"
    folder.mkdir(exist_ok=True)
    (folder / "secret.txt").write_text("secret")
    images = CatalogImages(_catalog(folder, [uri]), tmp_path / "served")
    out = images(0)
    if out.lower().startswith(("http://", "https://")):
        assert out == uri
    else:
        assert Path(out).parent == images.folder
        with Image.open(out) as im:
            assert im.format in {"PNG", "JPEG", "GIF", "WEBP", "BMP"}


def test_a_copy_removed_by_gradios_cache_cleaning_is_served_again(tmp_path):
    """delete_cache removes old files from Gradio's cache; the next round must not link a dead file."""
    cat_dir = tmp_path / "cat"
    cat_dir.mkdir()
    Image.new("RGB", (8, 8), "red").save(cat_dir / "red.png")
    images = CatalogImages(_catalog(cat_dir, ["red.png", "missing.png"]), tmp_path / "served")
    first, placeholder = images(0), images(1)
    os.remove(first), os.remove(placeholder)  # what Gradio's cache cleaning does once they are old
    again, placeholder_again = images(0), images(1)
    assert Path(again).read_bytes() == (cat_dir / "red.png").read_bytes()
    with Image.open(placeholder_again) as im:
        assert im.format == "PNG"


def test_refreshing_a_served_copy_leaves_no_temporary_files(tmp_path, monkeypatch):
    import clip_arena.arena.images as served_images

    cat_dir = tmp_path / "cat"
    cat_dir.mkdir()
    Image.new("RGB", (8, 8), "red").save(cat_dir / "red.png")
    images = CatalogImages(_catalog(cat_dir, ["red.png"]), tmp_path / "served")
    monkeypatch.setattr(served_images, "REFRESH_S", 0.0)  # every call makes the copy anew
    for _ in range(5):
        path = images(0)
    assert sorted(p.name for p in images.folder.iterdir()) == [Path(path).name]
