"""prepare's offline attribute tier: vocabularies checked, zero-shot with the real demo model, "unknown"
under the threshold, the tier named."""

import numpy as np
import pandas as pd
import pytest

from clip_arena.core.errors import UserError
from clip_arena.core.settings import ASSETS_DIR
from clip_arena.prepare.attributes import DEFAULT_VOCABULARY, ZeroShot, classify, load_vocabulary


def test_the_default_vocabulary_ships_and_loads():
    vocab = load_vocabulary(None)
    assert DEFAULT_VOCABULARY.is_file()
    assert {"style", "material", "colour", "object_type"} <= set(vocab) and "sofa" in vocab["object_type"]


@pytest.mark.parametrize("text, words", [
    ("- just a list", "must map attribute names"),
    ("style: modern", "at least two values"),
    ("style: [modern]", "at least two values"),
    ("split: [a, b]", "not a usable attribute name"),  # a catalog column
    ("'Bad Name!': [a, b]", "not a usable attribute name"),
    ("style: [modern, modern]", "lists a value twice"),
    ("style: [modern, unknown]", "unusable value"),
    ("style: [modern, '']", "unusable value"),
    ("style: [a, b]\ntemplates: {colour: 'a {value}'}", "not an attribute of the file"),
    ("style: [a, b]\ntemplates: {style: 'no placeholder'}", "prompts holding {value}"),
    ("style: [a, b", "not valid YAML"),
])
def test_a_bad_vocabulary_is_refused_in_one_sentence(tmp_path, text, words):
    path = tmp_path / "vocab.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=words):
        load_vocabulary(path)


def test_probabilities_margins_and_unknown_under_the_threshold():
    text = {"colour": np.eye(3, 4, dtype=np.float32)}  # three values on three axes
    images = np.array([[1, 0, 0, 0], [0.6, 0.64, 0, 0.48]], np.float32)  # clearly red; red or green, unsure
    out = classify(images, text, {"colour": ["red", "green", "blue"]}, scale=10.0, min_confidence=0.7)
    assert out["colour"] == ["red", "unknown"]  # the unsure guess never becomes training text
    p = np.exp(10 * np.array([1.0, 0, 0]))
    p /= p.sum()
    assert out["colour_confidence"][0] == pytest.approx(p[0], abs=1e-6)
    assert out["colour_margin"][0] == pytest.approx(p[0] - p[1], abs=1e-6)
    assert 0 < out["colour_margin"][1] < 0.25 and out["attributes_tier"] == ["offline", "offline"]


def test_zero_shot_with_the_demo_model_names_what_the_emoji_show(tmp_path):
    from PIL import Image

    from clip_arena.models import get_encoder

    names = ["red apple", "dog face", "automobile", "grinning face", "rocket", "pizza"]
    (tmp_path / "vocab.yaml").write_text(f"object_type: {names}\nmood: [happy, sad]\n"
                                         "templates: {object_type: '{value}'}\n")
    vocab = load_vocabulary(tmp_path / "vocab.yaml")
    catalog = pd.read_parquet(ASSETS_DIR / "demo" / "catalog.parquet", columns=["image_uri", "caption"])
    rows = catalog[catalog["caption"].isin(names)]
    images = [Image.open(ASSETS_DIR / "demo" / uri).convert("RGB") for uri in rows["image_uri"]]
    encoder = get_encoder("demo:base", "cpu")
    out = ZeroShot(encoder, vocab, min_confidence=0.5)(encoder.encode_images(images))
    assert out["object_type"] == rows["caption"].tolist()
    assert all(0.5 <= c <= 1 for c in out["object_type_confidence"])
    assert set(out) == {"object_type", "object_type_confidence", "object_type_margin", "mood", "mood_confidence",
                        "mood_margin", "attributes_tier"}
