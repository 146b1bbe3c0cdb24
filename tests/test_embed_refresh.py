"""Re-running `embed` on your own photos: the metadata follows the CSV, vectors are kept without a
model call, removed images are kept unless --prune, and `--split` draws a seeded, stratified,
grouped split; every mistake is said before a model loads."""

import numpy as np
import pytest
from PIL import Image

import clip_arena.models
from clip_arena.cli.main import main
from clip_arena.index.catalog import read_catalog

UNLOADABLE = "open_clip:/nonexistent/never-loaded.json"


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), np.uint8)).save(folder / f"p{i}.png")
    return folder


def _csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _embed(capsys, *args):
    code = main(["embed", "--workers", "0", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def forbid_models(monkeypatch):
    """From here on, any model load fails the test: what follows needs none."""
    monkeypatch.setattr(clip_arena.models, "get_encoder", lambda *a, **k: pytest.fail("a model was loaded"))


@pytest.fixture
def no_model(monkeypatch):
    forbid_models(monkeypatch)


def _first_catalog(tmp_path, photos, capsys, spec):
    meta = _csv(tmp_path / "meta.csv", ["image_uri", "caption", "category"],
                [(f"p{i}.png", f"photo {i}", "shoes" if i < 6 else "bags") for i in range(10)])
    out = tmp_path / "catalog.parquet"
    code, stdout, err = _embed(capsys, "--images", photos, "--metadata", meta, "--method", f"base={spec}", "-o", out)
    assert code == 0, err
    assert "10 images (10 new, 0 kept), 0 skipped" in stdout
    return meta, out


def test_an_edited_csv_updates_the_metadata_and_keeps_the_vectors_without_a_model(tmp_path, photos, capsys,
                                                                                   tiny_open_clip_spec, monkeypatch):
    """On main: '40 images (0 new, 40 kept)', the added split empty, the edited caption the old one."""
    meta, out = _first_catalog(tmp_path, photos, capsys, tiny_open_clip_spec)
    before = read_catalog(out)
    _csv(meta, ["image_uri", "caption", "split", "style"],
         [(f"p{i}.png", "a red photo" if i == 3 else f"photo {i}", "test" if i < 2 else "train", "flat")
          for i in range(10)])
    forbid_models(monkeypatch)
    code, stdout, err = _embed(capsys, "--images", photos, "--metadata", meta, "--method", f"base={tiny_open_clip_spec}",
                               "-o", out)
    assert code == 0, err
    assert ("10 images (0 new, 10 kept; metadata updated on 10: split added, style added, caption changed on 1, "
            "category removed), 0 skipped") in stdout
    assert "split: train 8, val 0, test 2" in stdout
    after = read_catalog(out)
    frame = after.frame().set_index("image_id")
    assert frame.loc["p3.png", "caption"] == "a red photo" and frame.loc["p0.png", "split"] == "test"
    assert "category" not in frame.columns and set(frame["style"]) == {"flat"}
    assert after.ids == before.ids
    np.testing.assert_array_equal(after.embeddings("base"), before.embeddings("base"))
    assert after.meta == before.meta  # the same models made every vector: their record is unchanged


def test_images_alone_add_new_photos_bare_and_keep_the_catalogs_metadata(tmp_path, photos, capsys,
                                                                        tiny_open_clip_spec):
    """On main a re-run without the CSV dropped every metadata column of the catalog."""
    _, out = _first_catalog(tmp_path, photos, capsys, tiny_open_clip_spec)
    Image.new("RGB", (20, 20), "blue").save(photos / "new.png")
    code, stdout, err = _embed(capsys, "--images", photos, "--method", f"base={tiny_open_clip_spec}", "-o", out)
    assert code == 0, err
    assert "11 images (1 new, 10 kept; metadata kept (no --metadata CSV)), 0 skipped" in stdout
    frame = read_catalog(out).frame().set_index("image_id")
    assert frame.loc["p0.png", "caption"] == "photo 0" and frame.loc["p9.png", "category"] == "bags"
    assert frame["caption"].isna()["new.png"] and frame["category"].isna()["new.png"]


def test_removed_images_are_kept_as_they_were_unless_pruned(tmp_path, photos, capsys, tiny_open_clip_spec, monkeypatch):
    meta, out = _first_catalog(tmp_path, photos, capsys, tiny_open_clip_spec)
    (photos / "p9.png").unlink()
    _csv(meta, ["image_uri", "caption", "category"], [(f"p{i}.png", f"photo {i}", "shoes") for i in range(9)])
    forbid_models(monkeypatch)
    args = ["--images", photos, "--metadata", meta, "--method", f"base={tiny_open_clip_spec}", "-o", out]
    code, stdout, _ = _embed(capsys, *args)
    assert code == 0 and "10 images (0 new, 10 kept; metadata updated on 3: category changed on 3)" in stdout
    assert "1 catalog rows are no longer in the folder or CSV: kept as they were (--prune drops them)" in stdout
    assert read_catalog(out).frame().set_index("image_id").loc["p9.png", "category"] == "bags"
    code, stdout, _ = _embed(capsys, *args, "--prune")
    assert code == 0 and "9 images (0 new, 9 kept; metadata unchanged)" in stdout and "dropped (--prune)" in stdout
    assert "p9.png" not in read_catalog(out).ids


def test_a_changed_image_uri_is_embedded_again(tmp_path, photos, capsys, tiny_open_clip_spec):
    """The photo moved (and was retouched): its path names another file, so its vectors are redone."""
    meta, out = _first_catalog(tmp_path, photos, capsys, tiny_open_clip_spec)
    before = read_catalog(out)
    (photos / "moved").mkdir()
    (photos / "p0.png").unlink()
    Image.new("RGB", (20, 20), "blue").save(photos / "moved" / "p0.png")
    _csv(meta, ["image_id", "image_uri", "caption"],
         [(f"p{i}.png", "moved/p0.png" if i == 0 else f"p{i}.png", f"photo {i}") for i in range(10)])
    code, stdout, err = _embed(capsys, "--images", photos, "--metadata", meta, "--method", f"base={tiny_open_clip_spec}",
                               "-o", out)
    assert code == 0, err
    assert "10 images (1 new, 1 of them re-embedded as its image_uri changed, 9 kept" in stdout
    after = read_catalog(out)
    assert after.frame().set_index("image_id").loc["p0.png", "image_uri"] == "photos/moved/p0.png"
    assert not np.allclose(after.embeddings("base")[after.ids.index("p0.png")], before.embeddings("base")[0])


def test_a_csv_image_id_that_names_another_folder_file_is_refused_before_a_model_loads(tmp_path, photos, capsys,
                                                                                      no_model):
    """On main the duplicate was found after every image was embedded."""
    meta = _csv(tmp_path / "meta.csv", ["image_id", "image_uri"], [("p0.png", "p9.png")])
    code, _, err = _embed(capsys, "--images", photos, "--metadata", meta, "--method", f"base={UNLOADABLE}",
                          "-o", tmp_path / "c.parquet")
    assert code == 2 and "image_id 'p0.png'" in err and "never-loaded" not in err


def test_split_is_drawn_seeded_stratified_and_kept_on_reruns(tmp_path, photos, capsys, tiny_open_clip_spec,
                                                             monkeypatch):
    meta, out = _first_catalog(tmp_path, photos, capsys, tiny_open_clip_spec)
    forbid_models(monkeypatch)
    args = ["--images", photos, "--metadata", meta, "--method", f"base={tiny_open_clip_spec}", "-o", out]
    code, stdout, err = _embed(capsys, *args, "--split", "80/10/10", "--split-by", "category")
    assert code == 0, err
    assert "metadata updated on 10: split added" in stdout
    assert "split 80/10/10 drawn for every row, seed 0, stratified by category" in stdout
    assert "split: train 8, val 1, test 1" in stdout
    first = read_catalog(out).frame()["split"].tolist()
    code, stdout, _ = _embed(capsys, *args, "--split", "80/10/10", "--split-by", "category")
    assert "split kept: the catalog already has one (train 8, val 1, test 1); --resplit draws it again" in stdout
    assert "metadata unchanged" in stdout and read_catalog(out).frame()["split"].tolist() == first
    code, stdout, _ = _embed(capsys, *args, "--split", "80/10/10", "--resplit", "--seed", "7")
    assert "drawn for every row (--resplit), seed 7" in stdout and "split: train 8, val 1, test 1" in stdout


def test_a_product_never_straddles_two_splits(tmp_path, photos, capsys, tiny_open_clip_spec):
    meta = _csv(tmp_path / "meta.csv", ["image_uri", "caption", "product_id"],
                [(f"p{i}.png", f"photo {i}", f"sku{i // 2}") for i in range(10)])
    out = tmp_path / "catalog.parquet"
    code, stdout, err = _embed(capsys, "--images", photos, "--metadata", meta, "--method", f"base={tiny_open_clip_spec}",
                               "-o", out, "--split", "60/20/20")
    assert code == 0, err
    assert "grouped by product_id (found in the catalog; --group-by to choose another)" in stdout
    frame = read_catalog(out).frame()
    assert frame.groupby("product_id")["split"].nunique().max() == 1
    assert sorted(frame["split"].value_counts().to_dict().items()) == [("test", 2), ("train", 6), ("val", 2)]


@pytest.mark.parametrize("args, message", [
    (["--split", "80/20"], "--split '80/20' must be three percentages TRAIN/VAL/TEST summing to 100"),
    (["--split", "80/10/10", "--split-by", "colour"], "--split-by 'colour': the catalog has no such column"),
    (["--split", "80/10/10", "--group-by", "sku"], "--group-by 'sku': the catalog has no such column"),
    (["--split-by", "category"], "--split-by goes with --split TRAIN/VAL/TEST"),
    (["--resplit"], "--resplit goes with --split"),
])
def test_split_mistakes_are_said_before_a_model_loads(tmp_path, photos, capsys, no_model, args, message):
    meta = _csv(tmp_path / "meta.csv", ["image_uri", "category"], [(f"p{i}.png", "shoes") for i in range(10)])
    code, _, err = _embed(capsys, "--images", photos, "--metadata", meta, "--method", f"base={UNLOADABLE}",
                          "-o", tmp_path / "c.parquet", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_other_methods_are_refused_before_a_model_loads(tmp_path, photos, capsys, tiny_open_clip_spec):
    """On main this came after 33 s of model loading."""
    _, out = _first_catalog(tmp_path, photos, capsys, tiny_open_clip_spec)
    code, _, err = _embed(capsys, "--images", photos, "--method", f"other={UNLOADABLE}", "-o", out)
    assert code == 2 and "needs the same methods" in err and "never-loaded" not in err


def test_a_csv_column_named_like_vectors_is_refused_before_a_model_loads(tmp_path, photos, capsys, no_model):
    """On main it was refused by the catalog's check, once every image was embedded."""
    meta = _csv(tmp_path / "meta.csv", ["image_uri", "style_embedding"], [("p0.png", "flat")])
    code, _, err = _embed(capsys, "--images", photos, "--metadata", meta, "--method", f"base={UNLOADABLE}",
                          "-o", tmp_path / "c.parquet")
    assert code == 2 and "'style_embedding'" in err and "rename it" in err


def test_split_values_finetune_would_ignore_are_pointed_out(tmp_path, photos, capsys, tiny_open_clip_spec):
    meta = _csv(tmp_path / "meta.csv", ["image_uri", "split"],
                [(f"p{i}.png", "Train" if i < 8 else "test") for i in range(10)])
    code, stdout, err = _embed(capsys, "--images", photos, "--metadata", meta, "--method", f"base={tiny_open_clip_spec}",
                               "-o", tmp_path / "c.parquet")
    assert code == 0, err
    assert "split: train 0, val 0, test 2; other values, which finetune and the arena ignore: 'Train' 8" in stdout
