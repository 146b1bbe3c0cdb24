"""prepare's offline attribute tier: vocabularies checked, zero-shot with the real demo model, "unknown"
under the threshold, the tier named."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

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


def test_the_vlm_tier_is_called_with_the_agreed_columns_and_named_in_the_catalog(tmp_path, monkeypatch):
    """The VLM helper's vlm_attributes (clip_arena.prepare.vlm.tier) stands in here: the same signature
    and the same columns (A, A_confidence, attributes_tier, vlm_error)."""
    import sys
    import types

    from clip_arena.prepare.pipeline import Options, Prepare

    calls = {}

    def vlm_attributes(rows, vocab, workdir, *, model, base_url=None, progress=print, id_column="id",
                       image_column="image", title_column="title", image_limits=None):
        calls.update(ids=list(rows[id_column]), images=list(rows[image_column]), titles=list(rows[title_column]),
                     vocab=vocab, model=model, base_url=base_url)
        answered = [i != "b" for i in rows[id_column]]
        return pd.DataFrame({"clean_title": ["VLM title"] * len(rows),
                             "colour": ["red" if a else "unknown" for a in answered],
                             "colour_confidence": [0.9 if a else 0.0 for a in answered],
                             "attributes_tier": [f"vlm:{model}"] * len(rows),
                             "vlm_error": ["" if a else "no answer came back for this row" for a in answered]},
                            index=rows.index)

    fake = types.SimpleNamespace(vlm_attributes=vlm_attributes)
    monkeypatch.setitem(sys.modules, "clip_arena.prepare.vlm.tier", fake)
    Image.new("RGB", (20, 20), (200, 0, 0)).save(tmp_path / "a.png")
    Image.new("RGB", (20, 20), (0, 0, 200)).save(tmp_path / "b.png")
    (tmp_path / "raw.csv").write_text("id,title,image\na,RED MUG SALE,a.png\nb,Blue mug,b.png\n")
    (tmp_path / "vocab.yaml").write_text("colour: [red, blue]\ntemplates: {colour: 'a {value} mug'}\n")
    options = Options(csv=tmp_path / "raw.csv", out=tmp_path / "out", tier="vlm", vlm_model="qwen-vl",
                      vlm_base_url="http://localhost:8000/v1", vocabulary=str(tmp_path / "vocab.yaml"),
                      template="{clean_title} in {colour}")
    Prepare(options, progress=lambda *a: None).run(["clean", "attributes", "split"])
    assert calls["ids"] == ["a", "b"] and calls["titles"] == ["Red Mug", "Blue mug"]
    assert calls["vocab"] == {"colour": ["red", "blue"]} and calls["base_url"] == "http://localhost:8000/v1"
    catalog = pd.read_parquet(tmp_path / "out" / "catalog.parquet").set_index("image_id")
    assert catalog.loc["a", "colour"] == "red" and catalog.loc["a", "attributes_tier"] == "vlm:qwen-vl"
    assert catalog.loc["b", "colour"] == "unknown" and catalog.loc["b", "vlm_error"]  # kept, with its reason
    assert catalog.loc["a", "caption"] == "Red Mug in red" and catalog.loc["b", "caption"] == "Blue mug"
