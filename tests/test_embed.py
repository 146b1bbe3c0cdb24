"""clip-arena embed: DESIGN schema from a folder and a CSV, bad images skipped, incremental."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clip_arena.index.catalog import read_catalog
from clip_arena.index.embed import build_catalog, items_from_folder
from clip_arena.models import get_encoder
from cli_runner import run_cli


def _folder(tmp_path, n=6):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = "sub/" if i % 2 else ""
        Image.fromarray(rng.integers(0, 255, (24 + i, 30, 3), np.uint8)).save(folder / f"{sub}im{i}.jpg")
    (folder / "broken.jpg").write_text("not an image")
    return folder


def test_embed_cli_writes_the_design_schema(tmp_path, tiny_open_clip_spec, tiny_hf_spec):
    folder = _folder(tmp_path)
    csv = tmp_path / "meta.csv"
    csv.write_text("image_uri,caption,split,category\nim0.jpg,a noisy square,test,noise\nsub/im1.jpg,another one,train,noise\n")
    out = tmp_path / "cat" / "catalog.parquet"
    proc = run_cli("embed", "--images", str(folder), "--metadata", str(csv), "--method", f"base={tiny_open_clip_spec}",
                "--method", f"finetuned={tiny_hf_spec}", "-o", str(out), "--workers", "2", "--batch-size", "4")
    assert proc.returncode == 0, proc.stderr
    assert "6 images (6 new, 0 kept), 1 skipped" in proc.stdout
    assert "not_image 1" in proc.stderr and "broken.jpg" in proc.stderr
    cat = read_catalog(out)  # validates the schema
    assert cat.methods == ["base", "finetuned"]
    assert cat.table.schema.field("base_embedding").type.list_size == 32
    assert cat.table.schema.field("finetuned_embedding").type.list_size == 24
    meta = json.loads(pq.read_schema(out).metadata[b"clip_arena"])
    assert meta["methods"]["base"]["spec"] == tiny_open_clip_spec and meta["methods"]["finetuned"]["dim"] == 24
    df = cat.frame().set_index("image_id")
    assert df.loc["im0.jpg", "caption"] == "a noisy square" and df.loc["im0.jpg", "split"] == "test"
    assert df.loc["im0.jpg", "image_uri"] == "../images/im0.jpg"  # relative to the catalog's folder
    assert "sub/im3.jpg" in df.index and df["caption"].isna()["sub/im3.jpg"]
    # Stored vectors equal what the registry gives for the same image (to the one level of 255 a
    # pixel may move when only the cropped region is resampled: models/pixels.py).
    enc = get_encoder(tiny_open_clip_spec)
    row = cat.ids.index("sub/im3.jpg")
    direct = enc.encode_images([Image.open(folder / "sub/im3.jpg").convert("RGB")])[0]
    np.testing.assert_allclose(cat.embeddings("base")[row], direct, atol=2e-4)


def test_incremental_embed_touches_only_new_images(tmp_path, tiny_open_clip_spec, monkeypatch):
    folder = _folder(tmp_path, n=4)
    (folder / "broken.jpg").unlink()
    out = tmp_path / "catalog.parquet"
    encoders = {"base": get_encoder(tiny_open_clip_spec)}
    first = build_catalog(items_from_folder(folder), encoders, out, workers=0, progress=False)
    assert (first.added, first.kept) == (4, 0)
    before = read_catalog(out)
    old_vectors = dict(zip(before.ids, before.embeddings("base")))

    Image.new("RGB", (30, 30), "blue").save(folder / "new.png")
    seen = []
    import clip_arena.index.embed as embed

    original = embed._DecodeDataset.__getitem__
    monkeypatch.setattr(embed._DecodeDataset, "__getitem__", lambda self, i: seen.append(self.sources[i]) or original(self, i))
    second = build_catalog(items_from_folder(folder), encoders, out, workers=0, progress=False)
    assert (second.added, second.kept) == (1, 4)
    assert [s.rsplit("/", 1)[-1] for s in seen] == ["new.png"]  # only the new image was decoded
    after = read_catalog(out)
    assert len(after) == 5
    for image_id, vec in old_vectors.items():
        np.testing.assert_array_equal(after.embeddings("base")[after.ids.index(image_id)], vec)


def test_embed_into_a_catalog_with_other_methods_is_refused(tmp_path, tiny_open_clip_spec):
    folder = _folder(tmp_path, n=2)
    out = tmp_path / "c.parquet"
    build_catalog(items_from_folder(folder), {"base": get_encoder(tiny_open_clip_spec)}, out, workers=0, progress=False)
    proc = run_cli("embed", "--images", str(folder), "--method", f"other={tiny_open_clip_spec}", "-o", str(out))
    assert proc.returncode == 2 and "needs the same methods" in proc.stderr


@pytest.mark.parametrize("args,message", [
    (["--method", "base"], "NAME=SPEC"),
    (["--method", "a-b=demo:base"], "letters, digits and underscores"),
    (["--method", "d/../x=demo:base"], "letters, digits and underscores"),
])
def test_embed_argument_errors(tmp_path, args, message):
    proc = run_cli("embed", "--images", str(tmp_path), "-o", str(tmp_path / "c.parquet"), *args)
    assert proc.returncode == 2 and message in proc.stderr


def test_a_metadata_csv_whose_paths_match_nothing_fails_and_says_where_they_were_looked_for(tmp_path,
                                                                                          tiny_open_clip_spec):
    """On main, 24 rows all `not_found` (paths written relative to another folder) exited 0, the
    folder's images added bare, without their captions and metadata."""
    (tmp_path / "photos").mkdir()
    (tmp_path / "meta").mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 30), "red").save(tmp_path / "photos" / name)
    csv = tmp_path / "meta" / "items.csv"
    csv.write_text("image_uri,caption\na.png,a red thing\nb.png,another\n")  # relative to photos/, not meta/
    out = tmp_path / "catalog.parquet"
    for folder in ([], ["--images", "."]):  # paths read under the CSV's folder, then under the working folder
        proc = run_cli("embed", *folder, "--metadata", str(csv), "--method", f"base={tiny_open_clip_spec}", "-o",
                       str(out), cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "None of the 2 image paths in" in proc.stderr and "are read under" in proc.stderr
        assert not out.exists()
    # Named with --images, the same CSV reads its paths under that folder.
    proc = run_cli("embed", "--images", "photos", "--metadata", str(csv), "--method", f"base={tiny_open_clip_spec}",
                   "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 images (2 new, 0 kept), 0 skipped" in proc.stdout
