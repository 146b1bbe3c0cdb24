"""The bundled demo: the emoji catalog builder, and the committed models and catalog."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.settings import DEFAULT_CATALOG
from demo.emoji import EMOJI_FONT, EMOJI_TEST, parse_emoji_test, split_by_subgroup
from finetune.evaluate import precision_at_k
from index.catalog import read_catalog
from models import get_encoder

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
def test_split_is_seeded_and_stratified():
    emoji = parse_emoji_test()
    a, b = split_by_subgroup(emoji, seed=0), split_by_subgroup(emoji, seed=0)
    assert a == b and a != split_by_subgroup(emoji, seed=1)
    by_sub = {}
    for e in emoji:
        by_sub.setdefault(e.subgroup, []).append(a[e.codepoints])
    for splits in by_sub.values():
        if len(splits) >= 3:
            assert "test" in splits and "train" in splits


@needs_unicode
def test_render_draws_a_centred_emoji_on_white():
    from PIL import ImageFont

    from demo.emoji import FONT_SIZE, render

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


def test_finetuned_beats_base_on_same_subcategory_precision():
    """Recomputed from the committed catalog, and equal to the metrics the build wrote."""
    catalog = read_catalog(DEFAULT_CATALOG)
    frame = catalog.frame()
    test = np.flatnonzero(frame["split"].to_numpy() == "test")
    labels = frame["subcategory"].to_numpy()
    p = {m: precision_at_k(catalog.embeddings(m)[test], test, catalog.embeddings(m), labels, 4) for m in catalog.methods}
    assert p["finetuned"] > p["base"]
    written = json.loads((Path(DEFAULT_CATALOG).parent / "metrics.json").read_text())["metrics"]
    for method in p:
        assert written[method]["precision@4"] == pytest.approx(p[method], abs=1e-9)
