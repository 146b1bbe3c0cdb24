"""The bundled demo: the emoji catalog builder, and the committed models and catalog."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clip_arena.core.settings import DEFAULT_CATALOG
from clip_arena.demo.emoji import EMOJI_FONT, EMOJI_TEST, parse_emoji_test
from clip_arena.finetune.evaluate import precision_at_k
from clip_arena.index.catalog import read_catalog
from clip_arena.models import get_encoder

needs_unicode = pytest.mark.skipif(not EMOJI_TEST.is_file() or not EMOJI_FONT.is_file(),
                                   reason="apt-get install unicode-data fonts-noto-color-emoji")


@needs_unicode
def test_emoji_list_is_fully_qualified_without_skin_tones():
    emoji = parse_emoji_test()
    assert len(emoji) > 1500
    grinning = next(e for e in emoji if e.codepoints == "1F600")
    assert (grinning.name, grinning.group, grinning.subgroup) == ("grinning face", "Smileys & Emotion", "face-smiling")
    assert not any(0x1F3FB <= ord(c) <= 0x1F3FF for e in emoji for c in e.char)
    assert len({e.codepoints for e in emoji}) == len(emoji)


@needs_unicode
def test_build_goes_from_a_raw_csv_through_prepare_and_shards_to_training(tmp_path):
    """The build's own steps on a handful of emoji: raw CSV -> prepare -> shards -> finetune --shards."""
    from PIL import ImageFont

    from clip_arena.demo import build
    from clip_arena.demo.emoji import FONT_SIZE, render
    from clip_arena.finetune.train import TrainConfig, finetune
    from clip_arena.index.embed import build_catalog
    from clip_arena.prepare.attributes import load_vocabulary

    wanted = {"grinning face", "red apple", "green apple", "NEW button", "keycap: *", "dog face", "cat face",
              "rocket", "banana", "grapes", "pig face", "cow face"}
    font = ImageFont.truetype(str(EMOJI_FONT), FONT_SIZE)
    (tmp_path / "images").mkdir()
    rows = []
    for e in parse_emoji_test():
        if e.name in wanted:
            render(e.char, font).save(tmp_path / "images" / f"{e.codepoints}.webp", lossless=True)
            rows.append({"image_id": e.codepoints, "image_uri": f"images/{e.codepoints}.webp", "caption": e.name,
                         "category": e.group, "subcategory": e.subgroup, "emoji": e.char})
    raw = build.write_raw_csv(rows, tmp_path / "emoji.csv")
    out = tmp_path / "prepared"
    summary = build.run_prepare(raw, out, tmp_path, f"open_clip:{build.CONFIG}")
    assert summary["usable"] == len(rows) == len(wanted) and summary["shards"]["train"] >= 1

    prepared = pd.read_parquet(out / "catalog.parquet").set_index("caption")
    # Captions are the raw names (the clean stage would make "NEW button" a bare "button").
    assert set(prepared.index) == wanted and prepared.loc["NEW button", "clean_title"] == "button"
    assert prepared.loc["red apple", "category"] == "Food & Drink"
    assert prepared.loc["red apple", "subcategory"] == "food-fruit"
    assert set(prepared["object_type"]) <= {*load_vocabulary(build.VOCABULARY)["object_type"], "unknown"}
    assert set(prepared["split"]) <= {"train", "val", "test"}

    cfg = TrainConfig(**{**build.FINETUNED.__dict__, "epochs": 1, "batch_size": 4, "max_steps": 1})
    result = finetune(build.shards_of(out), f"open_clip:{build.CONFIG}", tmp_path / "run", cfg, progress=False)
    assert (result.model_dir / "open_clip_model.safetensors").is_file()
    items = build.catalog_items(out / "catalog.parquet")
    assert {i.caption for i in items} == wanted and all(Path(i.source).is_file() for i in items)
    # embed: the prepared columns (confidences included) go into the catalog beside the vectors
    encoder = build._encoder(result.model_dir, f"open_clip:local-dir:{result.model_dir}")
    build_catalog(items, {"tiny": encoder}, tmp_path / "catalog.parquet", dtype="float16", workers=0, progress=False)
    frame = read_catalog(tmp_path / "catalog.parquet").frame().set_index("caption")
    assert set(build.KEPT) <= set(frame.columns) and frame.loc["red apple", "category"] == "Food & Drink"
    assert 0 <= float(frame.loc["red apple", "object_type_confidence"]) <= 1


@needs_unicode
def test_render_draws_a_centred_emoji_on_white():
    from PIL import ImageFont

    from clip_arena.demo.emoji import FONT_SIZE, render

    image = render("\U0001F34E", ImageFont.truetype(str(EMOJI_FONT), FONT_SIZE))  # red apple
    assert image.size == (72, 72) and image.getpixel((0, 0)) == (255, 255, 255)
    r, g, b = np.asarray(image)[20:52, 20:52].reshape(-1, 3).mean(axis=0)
    assert r > g + 40  # mostly red in the middle


def test_bundled_catalog_is_valid_and_complete():
    catalog = read_catalog(DEFAULT_CATALOG)
    assert catalog.methods == ["base", "finetuned"] and len(catalog) > 1500
    frame = catalog.frame()
    assert set(frame["split"]) == {"train", "val", "test"}
    assert {"category", "subcategory"} <= set(frame.columns)
    assert all((DEFAULT_CATALOG.parent / uri).is_file() for uri in frame["image_uri"][:50])
    assert catalog.meta["methods"]["finetuned"]["spec"] == "demo:finetuned"


@pytest.mark.parametrize("spec", ["demo:base", "demo:finetuned"])
def test_demo_models_rank_an_image_own_caption_above_unrelated_ones(spec):
    catalog = read_catalog(DEFAULT_CATALOG)
    frame = catalog.frame()
    train = frame[frame["split"] == "train"].sample(60, random_state=0)
    enc = get_encoder(spec)
    images = enc.encode_images([Image.open(DEFAULT_CATALOG.parent / u).convert("RGB") for u in train["image_uri"]])
    texts = enc.encode_texts(train["caption"].tolist())
    sims = images @ texts.T  # row i: image i against every caption
    own = np.diag(sims)
    beaten = (sims < own[:, None]).sum(axis=1) / (len(train) - 1)  # share of other captions below its own
    assert np.median(beaten) >= 0.9 and np.mean(beaten > 0.5) >= 0.9


@pytest.fixture(scope="module")
def demo_catalog():
    catalog = read_catalog(DEFAULT_CATALOG)
    frame = catalog.frame()
    return catalog, frame, np.flatnonzero(frame["split"].to_numpy() == "test")


def subgroup_precision(demo_catalog) -> dict[str, float]:
    """precision@4 of same-subgroup neighbours of the test images among the whole catalog,
    recomputed from the committed catalog's embeddings (not read from metrics.json)."""
    catalog, frame, test = demo_catalog
    labels = frame["subcategory"].to_numpy()
    return {m: precision_at_k(catalog.embeddings(m)[test], test, catalog.embeddings(m), labels, 4)
            for m in catalog.methods}


def test_finetuned_beats_base_on_same_subcategory_precision(demo_catalog):
    p = subgroup_precision(demo_catalog)
    assert p["finetuned"] > p["base"], p
    written = json.loads((Path(DEFAULT_CATALOG).parent / "metrics.json").read_text())["metrics"]
    for method in p:
        assert written[method]["precision@4"] == pytest.approx(p[method], abs=1e-9)


def test_finetuned_holds_the_demo_s_precision_and_its_gain_is_no_fluke(demo_catalog):
    """The fine-tune reaches the level the demo had (precision@4 0.450), and its gain over base is one a
    sign test over the test queries finds (each query's share of same-subgroup neighbours, base against
    finetuned, ties left out) at p < 0.001. (The bar was +0.10 over a base trained from a stream whose
    first batches held few subgroups; trained from a shuffled stream, base alone reaches 0.382.)"""
    from scipy.stats import binomtest

    from clip_arena.finetune.evaluate import precision_per_query

    catalog, frame, test = demo_catalog
    labels = frame["subcategory"].to_numpy()
    per_query = {m: precision_per_query(catalog.embeddings(m)[test], test, catalog.embeddings(m), labels, 4)
                 for m in catalog.methods}
    assert per_query["finetuned"].mean() >= 0.450 - 1e-9, per_query["finetuned"].mean()
    better = int((per_query["finetuned"] > per_query["base"]).sum())
    worse = int((per_query["finetuned"] < per_query["base"]).sum())
    assert better > worse and binomtest(better, better + worse, alternative="greater").pvalue < 0.001, (better, worse)


def test_few_arena_rounds_show_the_same_list_for_both_methods(demo_catalog):
    """As the arena searches (whole catalog, the query left out): fewer than 10% identical lists."""
    from clip_arena.index.search import Searcher

    catalog, _, test = demo_catalog
    searcher = Searcher.open(catalog)
    same = [np.array_equal(searcher.neighbours("base", int(q), 4)[0], searcher.neighbours("finetuned", int(q), 4)[0])
            for q in test]
    assert np.mean(same) < 0.10, f"{sum(same)} of {len(test)} test queries give identical lists"


def plain_name_recall(demo_catalog) -> dict[str, dict[str, float]]:
    """Text-to-image recall@1/5/10 of the plain names over the test images, each model's own text
    embeddings against the catalog's image embeddings."""
    from clip_arena.finetune.evaluate import text_to_image_recall

    catalog, frame, test = demo_catalog
    recall = {}
    for method in catalog.methods:
        texts = get_encoder(f"demo:{method}").encode_texts(frame["caption"].iloc[test].tolist())
        recall[method] = text_to_image_recall(texts, catalog.embeddings(method)[test])
    return recall


def test_finetuned_recalls_plain_names_no_worse_than_base(demo_catalog):
    recall = plain_name_recall(demo_catalog)
    for k in ("recall@1", "recall@5", "recall@10"):
        assert recall["finetuned"][k] >= recall["base"][k], recall
