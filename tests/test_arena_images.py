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
            "missing.png", "https://example.invalid/a.jpg", "../cat/red.png"]
    images = CatalogImages(_catalog(cat_dir, uris), served)
    paths = [images(row) for row in range(len(uris))]
    local = [Path(p) for p in paths]
    assert all(p.parent == images.folder and images.folder.is_relative_to(served) for p in local)
    assert Path(paths[0]).read_bytes() == (cat_dir / "red.png").read_bytes()
    assert Path(paths[1]).read_bytes() == (outside / "blue.jpg").read_bytes()  # images outside the folder work
    assert Path(paths[8]).read_bytes() == (cat_dir / "red.png").read_bytes()
    placeholder = {paths[i] for i in (2, 3, 4, 5, 6, 7)}  # 7: a URL that cannot be fetched
    assert len(placeholder) == 1 and Path(placeholder.pop()).name == "missing.png"
    parquet = (cat_dir / "catalog.parquet").read_bytes()
    for p in images.folder.iterdir():  # nothing in the served folder but images
        assert p.read_bytes() != parquet and Image.open(p).format in {"PNG", "JPEG"}
    assert images(0) == paths[0]  # linked once, then remembered


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1,
               max_size=30))
def test_any_image_uri_serves_a_copy_or_the_placeholder(tmp_path, uri):
    folder = tmp_path / "h"
    folder.mkdir(exist_ok=True)
    (folder / "secret.txt").write_text("secret")
    images = CatalogImages(_catalog(folder, [uri]), tmp_path / "served")
    out = images(0)
    # Whatever the uri (a URL too: fetched, or the placeholder), a served copy in the served folder.
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


def test_catalog_urls_are_fetched_by_the_server_and_private_hosts_only_when_named(tmp_path):
    """On main the arena handed catalog URLs to Gradio, which downloaded them and refused a
    private host: a catalog on the owner's own network (http://10.x, http://127.0.0.1:...) was
    unusable although the README said the browser loads them."""
    import io

    from clip_arena.core.settings import FetchLimits
    from http_server import LocalServer, Route

    png = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(png, format="PNG")
    with LocalServer() as server:
        server.routes["/a.png"] = Route(png.getvalue(), headers={"Content-Type": "image/png"})
        server.routes["/page"] = Route(b"<html>not an image</html>", headers={"Content-Type": "text/html"})
        uris = [server.url("/a.png"), server.url("/page")]
        (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
        refused = CatalogImages(_catalog(tmp_path / "a", uris), tmp_path / "served-a")
        assert Path(refused(0)).name == "missing.png" and server.hits == []  # private: no connection at all
        trusted = CatalogImages(_catalog(tmp_path / "b", uris), tmp_path / "served-b",
                                FetchLimits(trusted_hosts=("127.0.0.1",)))
        shown = Path(trusted(0))
        assert shown.parent == trusted.folder and shown.read_bytes() == png.getvalue()
        assert Path(trusted(1)).name == "missing.png"  # fetched, but not an image
        hits = len(server.hits)
        assert trusted(0) == str(shown) and len(server.hits) == hits  # fetched once


def test_an_arena_over_a_catalog_on_the_owners_network(tmp_path, serve_app):
    """`serve --catalog-hosts 127.0.0.1`: the round's images come from the owner's image host."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from gradio_client import Client

    from catalog_helpers import write_image_catalog
    from http_server import LocalServer, Route

    catalog = write_image_catalog(tmp_path)
    with LocalServer() as server:
        table = pq.read_table(catalog)
        for i in range(table.num_rows):
            server.routes[f"/img/{i}.png"] = Route((tmp_path / "images" / f"{i}.png").read_bytes())
        uris = pa.array([server.url(f"/img/{i}.png") for i in range(table.num_rows)], pa.string())
        pq.write_table(table.set_column(table.column_names.index("image_uri"), "image_uri", uris), catalog)
        url = serve_app("--catalog", str(catalog), "--votes", str(tmp_path / "v.db"), "--catalog-hosts", "127.0.0.1")
        out = Client(url, verbose=False, download_files=False).predict("owner", "all", api_name="/arena_start")
        query, left = out[3], out[4]
        assert not query["path"].endswith("missing.png") and all(
            not item["image"]["path"].endswith("missing.png") for item in left)
        assert any(hit.startswith("/img/") for hit in server.hits)
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert "40 URLs (fetched by this server; private hosts allowed: 127.0.0.1)" in log
