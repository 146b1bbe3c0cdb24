"""`clip-arena prepare` end to end on a small raw catalog: the catalog, the report, the shards and their
manifest; `embed` reading the catalog with its split; a killed run resumed without redoing finished work."""

import json
import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clip_arena.cli.main import main
from clip_arena.prepare import stages
from clip_arena.prepare.pipeline import Options, Prepare
from clip_arena.prepare.shards import sha256_file

CATEGORIES = ("chairs", "tables")


def _raw_catalog(folder, n=14):
    """n product photos (a few shapes on colours), one exact copy, one broken file, one missing file and
    one path that leaves the folder; messy titles."""
    (folder / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["Product ID,Name,Image Path,Category"]
    for i in range(n):
        pixels = np.kron(rng.integers(0, 255, (4, 5, 3)), np.ones((12, 12, 1))).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "img" / f"p{i}.jpg", quality=90)
        lines.append(f'p{i},"SOLID OAK {CATEGORIES[i % 2][:-1].upper()} NO. {i} - FREE SHIPPING!!!",img/p{i}.jpg,'
                     f"{CATEGORIES[i % 2]}")
    shutil.copy(folder / "img" / "p0.jpg", folder / "img" / "copy.jpg")
    (folder / "img" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    lines += ["copy,&lt;b&gt;Oak chair&lt;/b&gt;,img/copy.jpg,chairs", "broken,Broken,img/broken.jpg,tables",
              "missing,Missing,img/missing.jpg,chairs", "escape,Escape,../../../etc/hostname,tables"]
    (folder / "raw.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "raw.csv"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """One full run through the command line (in this process), as a user runs it."""
    folder = tmp_path_factory.mktemp("prepare")
    raw = _raw_catalog(folder)
    out = folder / "out"
    vocab = folder / "vocab.yaml"
    vocab.write_text("style: [modern, rustic]\nmaterial: [oak, metal]\nobject_type: [chair, table]\n"
                     "colour: [red, green, blue]\n")
    args = ["prepare", str(raw), "-o", str(out), "--model", "demo:base", "--device", "cpu", "--attributes",
            str(vocab), "--split", "60/20/20", "--shard-count", "3", "--mini-train", "4", "--json"]
    return out, args


def test_prepare_writes_a_catalog_with_clean_titles_attributes_and_split(prepared, capsys):
    out, args = prepared
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_rows"] == 18 and summary["usable"] == 15 and summary["skipped"] == 3
    assert summary["stages"] == dict.fromkeys(["clean", "attributes", "split", "shards"], "done")
    catalog = pd.read_parquet(out / "catalog.parquet")
    assert len(catalog) == 15 and catalog["image_id"].is_unique
    row = catalog.set_index("image_id").loc["p1"]
    assert row["clean_title"] == "Solid Oak Table No. 1" and row["title"].endswith("FREE SHIPPING!!!")
    assert row["object_type"] in ("chair", "table", "unknown") and 0 <= row["object_type_confidence"] <= 1
    assert row["attributes_tier"] == "offline" and row["Category"] == "tables"
    assert catalog.set_index("image_id").loc["copy", "clean_title"] == "Oak chair"
    assert set(catalog["split"]) == {"train", "val", "test"}
    assert catalog["mini_train"].sum() == 4 and (catalog.loc[catalog["mini_train"], "split"] == "train").all()
    assert all(uri.startswith("/") for uri in catalog["image_uri"])  # `embed` reads them from anywhere
    from clip_arena.index.catalog import read_catalog

    assert read_catalog(out / "catalog.parquet", require_embeddings=False)  # as `finetune --catalog` reads it
    report = json.loads((out / "report.json").read_text())
    assert {(r["image_id"], r["kind"]) for r in report["skipped"]} == {
        ("broken", "corrupt"), ("missing", "not_found"), ("escape", "outside_roots")} or \
        {r["image_id"] for r in report["skipped"]} == {"broken", "missing", "escape"}
    assert all(r["reason"] for r in report["skipped"])
    assert report["duplicates"] == [{"image_id": "copy", "duplicate_of": "p0", "kind": "exact"}]
    dup = catalog.set_index("image_id")
    assert dup.loc["copy", "split"] == dup.loc["p0", "split"]  # a copy never lands in the other split


def test_the_shards_and_manifest_match_the_catalog(prepared):
    import webdataset as wds

    out, _ = prepared
    catalog = pd.read_parquet(out / "catalog.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    for split, entry in manifest["splits"].items():
        files = sorted((out / "shards" / split).glob("shard-*.tar"))
        assert [s["name"] for s in entry["shards"]] == [f.name for f in files]
        assert [s["sha256"] for s in entry["shards"]] == [sha256_file(f) for f in files]
        assert all(s["samples"] <= 3 for s in entry["shards"])
        samples = list(wds.WebDataset([str(f) for f in files], shardshuffle=False))
        expected = catalog[catalog["split"] == split]
        assert len(samples) == entry["samples"] == manifest["counts"][split] == len(expected)
        for s in samples:
            meta = json.loads(s["json"])
            assert s["txt"].decode() == expected.set_index("image_id").loc[meta["image_id"], "caption"]
            assert Image.open(__import__("io").BytesIO(s["jpg"])).size == (manifest["image_size"],) * 2
            assert meta["split"] == split and "object_type_confidence" in meta


def test_embed_reads_the_prepared_catalog_and_keeps_its_split(prepared, tmp_path, capsys):
    from clip_arena.index.catalog import read_catalog

    out, _ = prepared
    assert main(["embed", "--metadata", str(out / "catalog.parquet"), "--method", "base=demo:base", "--device",
                 "cpu", "--workers", "0", "-o", str(tmp_path / "embedded.parquet")]) == 0
    prepared_rows = pd.read_parquet(out / "catalog.parquet").set_index("image_id")
    embedded = read_catalog(tmp_path / "embedded.parquet").table.to_pandas().set_index("image_id")
    assert len(embedded) == len(prepared_rows)
    assert (embedded["split"] == prepared_rows.loc[embedded.index, "split"]).all()
    assert (embedded["caption"] == prepared_rows.loc[embedded.index, "caption"]).all()


def test_a_killed_prepare_resumed_redoes_no_finished_work(tmp_path, monkeypatch):
    raw = _raw_catalog(tmp_path)
    (tmp_path / "vocab.yaml").write_text("colour: [red, green, blue]\nobject_type: [chair, table]\n")
    options = dict(csv=raw, out=tmp_path / "out", model="demo:base", device="cpu", part_rows=4, split="60/20/20",
                   shard_count=4, vocabulary=str(tmp_path / "vocab.yaml"), template="{clean_title}, {colour}")

    class Killed(Exception):
        pass

    def kill_after_two_attribute_parts(stage, done, total):
        if stage == "attributes" and done >= 8:
            raise Killed

    with pytest.raises(Killed):
        Prepare(Options(**options), progress=kill_after_two_attribute_parts).run()
    done_rows = {"clean": 0, "attributes": 0}
    real_clean, real_attributes = stages.clean_part, stages.attributes_part
    monkeypatch.setattr(stages, "clean_part", lambda recs, ctx: done_rows.__setitem__(
        "clean", done_rows["clean"] + len(recs)) or real_clean(recs, ctx))
    monkeypatch.setattr(stages, "attributes_part", lambda recs, **kw: done_rows.__setitem__(
        "attributes", done_rows["attributes"] + len(recs)) or real_attributes(recs, **kw))
    summary = Prepare(Options(**options, resume=True), progress=lambda *a: None).run()
    assert summary["stages"] == {"clean": "resumed", "attributes": "done", "split": "done", "shards": "done"}
    assert done_rows == {"clean": 0, "attributes": 15 - 8}  # only the parts not saved before the kill
    manifest = (tmp_path / "out" / "manifest.json").read_bytes()
    again = Prepare(Options(**options, resume=True), progress=lambda *a: None).run()
    assert set(again["stages"].values()) == {"resumed"} and done_rows["attributes"] == 7
    assert (tmp_path / "out" / "manifest.json").read_bytes() == manifest

    def kill_while_writing_train_shards(stage, done, total):
        if stage == "shards train" and done >= 4:
            raise Killed

    with pytest.raises(Killed):  # a rewrite with other limits, killed part way through the train split
        Prepare(Options(**{**options, "shard_count": 2}, resume=True), progress=kill_while_writing_train_shards).run()
    assert not (tmp_path / "out" / "manifest.json").exists()  # nothing counts shards that were not written
    for shard in (tmp_path / "out" / "shards").glob("*/*.tar"):  # under its final name, a shard is whole
        with tarfile.open(shard) as tar:
            assert len(tar.getmembers()) % 3 == 0
    # Another caption template is the shards' business: the finished split is reused, not asked for again.
    summary = Prepare(Options(**{**options, "template": "{clean_title}"}, resume=True),
                      progress=lambda *a: None).run(only=["shards"])
    assert summary["stages"] == {"shards": "done"}
    catalog = pd.read_parquet(tmp_path / "out" / "catalog.parquet")
    assert catalog["caption"].tolist() == catalog["clean_title"].tolist()


def test_rows_added_to_the_csv_leave_the_earlier_rows_split_alone(tmp_path):
    raw = _raw_catalog(tmp_path, n=10)
    (tmp_path / "vocab.yaml").write_text("colour: [red, blue]\n")
    options = dict(csv=raw, out=tmp_path / "out", model="demo:base", device="cpu", split="50/25/25",
                   vocabulary=str(tmp_path / "vocab.yaml"), template="{clean_title}")
    Prepare(Options(**options), progress=lambda *a: None).run(["clean", "attributes", "split"])
    first = pd.read_parquet(tmp_path / "out" / "catalog.parquet").set_index("image_id")["split"]
    rng = np.random.default_rng(1)
    with raw.open("a") as f:
        for i in range(10, 22):
            Image.fromarray(rng.integers(0, 255, (30, 40, 3), np.uint8)).save(tmp_path / "img" / f"p{i}.png")
            f.write(f"p{i},New chair {i},img/p{i}.png,{CATEGORIES[i % 2]}\n")
    summary = Prepare(Options(**options), progress=lambda *a: None).run(["clean", "attributes", "split"])
    grown = pd.read_parquet(tmp_path / "out" / "catalog.parquet").set_index("image_id")["split"]
    assert len(grown) == len(first) + 12 and summary["split_kept"] == len(first)
    assert (grown.loc[first.index] == first).all()  # the test rows the arena measured on stay test rows
    assert set(grown.drop(first.index)) == {"train", "val", "test"}
