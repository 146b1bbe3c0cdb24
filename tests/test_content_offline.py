"""Content analysis with no hub: every offline tier on images and copy the tests make."""

import json

import numpy as np
import pytest
from PIL import Image

from clip_arena.analyzer.content import hub
from clip_arena.analyzer.content.component import Backend, Component, Context, Unavailable
from clip_arena.analyzer.content.ocr import with_tesseract
from clip_arena.analyzer.content.report import SECTION_NAMES, analyze, components
from clip_arena.analyzer.similarity import score_image_texts
from clip_arena.core.settings import Settings
from clip_arena.models import get_encoder
from tests.drawing import colour_blocks, printed_text


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.clear()
    yield
    hub.clear()


def run(image, text="", only=None, model=None):
    return analyze(image, text, Settings(), model=model, only=only)["sections"]


def test_ocr_reads_printed_text_back_and_measures_its_area():
    sec = run(printed_text("SALE 50% OFF"), only={"ocr"})["ocr"]
    assert sec["status"] == "ok" and sec["backend"] == "rapidocr-onnxruntime"
    assert "SALE 50% OFF" in sec["text"].upper().replace("  ", " ")
    assert 0.03 < sec["text_area_ratio"] < 0.6
    assert all(0 <= line["confidence"] <= 1 for line in sec["lines"])


def test_ocr_finds_no_text_on_a_blank_image():
    sec = run(Image.new("RGB", (300, 200), "white"), only={"ocr"})["ocr"]
    assert sec["status"] == "ok" and sec["text"] == "" and sec["text_area_ratio"] == 0


def test_tesseract_tier_reads_printed_text(tiny_open_clip_spec):
    if Backend("tesseract", with_tesseract, binaries=("tesseract",)).missing():
        pytest.skip("Debian's tesseract-ocr is not installed (make system-packages installs it)")
    ctx = Context(image=printed_text("BUY NOW"), text="", settings=Settings(), model=tiny_open_clip_spec)
    values = with_tesseract(ctx)
    assert "BUY NOW" in values["text"]
    assert values["text_area_ratio"] > 0.02 and "confidence" not in values["lines"][0]


def test_palette_matches_the_drawn_colours_and_their_shares():
    image = colour_blocks([((255, 0, 0), 0.5), ((0, 0, 255), 0.3), ((255, 255, 255), 0.2)])
    sec = run(image, only={"image_properties"})["image_properties"]
    got = [(c["name"], c["hex"]) for c in sec["dominant_colours"]]
    assert got == [("red", "#ff0000"), ("blue", "#0000ff"), ("white", "#ffffff")]
    # Shares are counted on a thumbnail: within a percent of the drawn ones.
    assert [c["share"] for c in sec["dominant_colours"]] == pytest.approx([0.5, 0.3, 0.2], abs=0.01)


def test_palette_merges_noise_around_one_colour():
    rng = np.random.default_rng(0)
    base = np.asarray(colour_blocks([((200, 30, 30), 0.6), ((30, 30, 200), 0.4)]), dtype=int)
    noisy = Image.fromarray(np.clip(base + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8))
    colours = run(noisy, only={"image_properties"})["image_properties"]["dominant_colours"]
    assert len(colours) == 2
    assert [round(c["share"], 1) for c in colours] == [0.6, 0.4]


def test_image_properties_follow_their_definitions():
    red = run(Image.new("RGB", (80, 40), (255, 0, 0)), only={"image_properties"})["image_properties"]
    # Hasler-Suesstrunk on flat red: 0.3 * sqrt(255^2 + 127.5^2).
    assert red["colourfulness"] == pytest.approx(0.3 * np.hypot(255, 127.5), abs=0.01)
    assert red["brightness"] == pytest.approx(0.299, abs=1e-3) and red["contrast"] == 0
    assert (red["width"], red["height"], red["aspect_ratio"], red["orientation"]) == (80, 40, 2.0, "landscape")
    grey = run(Image.new("RGB", (50, 50), (128, 128, 128)), only={"image_properties"})["image_properties"]
    assert grey["colourfulness"] == 0 and grey["sharpness"] == 0 and grey["orientation"] == "square"
    checker = Image.fromarray((np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)).convert("RGB")
    sharp = run(checker, only={"image_properties"})["image_properties"]
    blurred = run(checker.resize((16, 16)).resize((64, 64), Image.BILINEAR), only={"image_properties"})
    assert sharp["sharpness"] > 10 * blurred["image_properties"]["sharpness"]
    assert sharp["contrast"] == pytest.approx(0.5, abs=1e-6)


def test_positive_and_negative_copy_get_opposite_sentiment_from_vader():
    pos = run(None, "I love this! Amazing quality, the best gift ever.", only={"sentiment"})["sentiment"]
    neg = run(None, "Terrible. It broke in a day, a waste of money and I hate it.", only={"sentiment"})["sentiment"]
    assert (pos["label"], neg["label"]) == ("positive", "negative")
    assert pos["vader_compound"] > 0.5 and neg["vader_compound"] < -0.5
    for sec in (pos, neg):
        assert sec["status"] == "degraded" and sec["backend"] == "vader" and "probabilities" not in sec
        assert "cardiffnlp/twitter-roberta-base-sentiment-latest" in sec["reason"]
        assert "CLIP_ARENA_SENTIMENT_MODEL" in sec["reason"]


def test_entity_rules_find_the_patterns_of_ad_copy():
    copy = ("Save 25% today only: now $19.99 (was 30 EUR) until Dec 24, 2026! Order at www.shop.example.com/x, "
            "questions to help@shop.example.com. #winter @acme Shop now.")
    sec = run(None, copy, only={"entities"})["entities"]
    assert sec["status"] == "degraded" and sec["backend"] == "rules" and "named_entities" not in sec
    p = sec["patterns"]
    assert p["percentages"] == ["25%"] and p["money"] == ["$19.99", "30 EUR"]
    assert "Dec 24, 2026" in p["dates"] and "today" in p["dates"]
    assert p["urls"] == ["www.shop.example.com/x"] and p["emails"] == ["help@shop.example.com"]
    assert (p["hashtags"], p["mentions"], p["calls_to_action"]) == (["#winter"], ["@acme"], ["shop now"])


def test_text_properties_count_and_score_readability():
    sec = run(None, "The cat sat on the mat.", only={"text_properties"})["text_properties"]
    assert (sec["words"], sec["sentences"], sec["syllables"]) == (6, 1, 6)
    assert sec["flesch_reading_ease"] == pytest.approx(206.835 - 1.015 * 6 - 84.6 * 1, abs=0.01)
    ad = run(None, "Summer SALE! 🔥🔥 Shop now, don't miss it", only={"text_properties"})["text_properties"]
    assert ad["emoji"] == ["🔥", "🔥"] and ad["emoji_count"] == 2 and ad["exclamation_marks"] == 1
    assert ad["calls_to_action"] == ["shop now", "don't miss"] and ad["has_call_to_action"] is True
    assert ad["sentences"] == 2


def test_haar_tier_stands_in_for_detr_offline():
    sec = run(Image.new("RGB", (320, 240), "white"), only={"objects"})["objects"]
    assert sec["status"] == "degraded" and sec["backend"] == "opencv-haar"
    assert "facebook/detr-resnet-50" in sec["reason"]
    assert (sec["faces"], sec["people"]) == (0, 0) and "detections" not in sec


def test_caption_is_unavailable_offline_with_the_reason():
    sec = run(Image.new("RGB", (64, 64), "white"), only={"caption"})["caption"]
    assert sec["status"] == "unavailable" and sec["backend"] is None
    assert "Salesforce/blip-image-captioning-base" in sec["reason"] and "offline" in sec["reason"]


def test_alignment_matches_the_similarity_tab(tiny_open_clip_spec):
    image = colour_blocks([((10, 200, 10), 1.0)])
    sec = run(image, "a green square", only={"alignment"}, model=tiny_open_clip_spec)["alignment"]
    expected = score_image_texts(get_encoder(tiny_open_clip_spec), image, ["a green square"])[0]
    assert sec["status"] == "ok" and sec["backend"] == f"clip:{tiny_open_clip_spec}"
    assert sec["cosine"] == pytest.approx(expected.cosine, abs=1e-4)
    assert (sec["similarity"], sec["percentile"]) == (expected.similarity, expected.percentile)


def test_labels_rank_the_vocabulary_by_clip_similarity(tiny_open_clip_spec):
    from clip_arena.analyzer.content.labels import vocabulary

    image = colour_blocks([((250, 200, 20), 1.0)])
    sec = run(image, only={"labels"}, model=tiny_open_clip_spec)["labels"]
    encoder = get_encoder(tiny_open_clip_spec)
    image_vec = encoder.encode_images([image])[0]
    spec = vocabulary()["colours"]
    cosines = encoder.encode_texts([spec["template"].format(x) for x in spec["labels"]]) @ image_vec
    assert sec["categories"]["colours"][0]["label"] == spec["labels"][int(np.argmax(cosines))]
    assert set(sec["categories"]) == set(vocabulary()) and len(sec["top"]) == len(vocabulary())
    for items in sec["categories"].values():
        probs = [i["probability"] for i in items]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001


def test_report_has_every_section_in_the_json_contract(tiny_open_clip_spec):
    report = analyze(printed_text("HELLO"), "Hello world, shop now!", Settings(), model=tiny_open_clip_spec)
    assert list(report["sections"]) == list(SECTION_NAMES)
    for sec in report["sections"].values():
        assert sec["status"] in {"ok", "degraded", "unavailable"} and {"backend", "reason"} <= set(sec)
    assert report["sections"]["effectiveness"] == {"status": "unavailable", "backend": None,
                                                   "reason": "no trained model"}
    json.dumps(report)  # plain JSON, no numpy scalars


def test_sections_say_what_input_they_lack(tiny_open_clip_spec):
    text_only = analyze(None, "Fresh bread every morning", Settings(), model=tiny_open_clip_spec)["sections"]
    for name in ("alignment", "labels", "ocr", "image_properties", "objects", "caption"):
        assert (text_only[name]["status"], text_only[name]["reason"]) == ("unavailable", "no image was given")
    assert text_only["text_properties"]["status"] == "ok"
    image_only = analyze(Image.new("RGB", (32, 32)), "  ", Settings(), model=tiny_open_clip_spec)["sections"]
    assert image_only["sentiment"]["reason"] == "no text was given"


def test_a_lower_tier_runs_when_a_better_one_cannot():
    def fails(ctx):
        raise Unavailable("weights not reachable")

    comp = Component("demo", backends=(
        Backend("needs-module", lambda ctx: {"x": 1}, modules=("no_such_module_xyz",)),
        Backend("needs-weights", fails),
        Backend("fallback", lambda ctx: {"y": 2}),
    ))
    sec = comp.run(Context(image=None, text="", settings=Settings(), model="demo:base"))
    assert (sec["status"], sec["backend"], sec["y"]) == ("degraded", "fallback", 2)
    assert sec["reason"] == ("needs-module: Python module no_such_module_xyz is not installed; "
                             "needs-weights: weights not reachable")
    none = Component("none", backends=(Backend("b", fails),)).run(
        Context(image=None, text="", settings=Settings(), model="demo:base"))
    assert (none["status"], none["backend"], none["reason"]) == ("unavailable", None, "b: weights not reachable")


def test_a_crashing_component_does_not_take_the_report_down(monkeypatch, tiny_open_clip_spec):
    from clip_arena.analyzer.content import text_properties

    def boom(text, count):
        raise RuntimeError("bug")

    monkeypatch.setattr(text_properties, "properties", boom)
    sections = run(None, "hello", model=tiny_open_clip_spec)
    assert sections["text_properties"]["status"] == "unavailable"
    assert sections["text_properties"]["reason"] == "failed: RuntimeError: bug"
    assert sections["sentiment"]["status"] == "degraded"


def test_hub_failures_are_remembered_so_offline_analyses_stay_fast(monkeypatch):
    calls = []

    def loader(name, device):
        calls.append(name)
        raise OSError("no network")

    monkeypatch.setenv("CLIP_ARENA_CAPTION_MODEL", "someone/missing-model")
    for _ in range(3):
        with pytest.raises(Unavailable, match="someone/missing-model"):
            hub.load("caption", loader, "cpu")
    assert len(calls) == 1


def test_every_component_declares_its_needs(tiny_open_clip_spec):
    for comp in components(tiny_open_clip_spec):
        needs = comp.needs()
        assert needs["backends"] and all("missing" in b for b in needs["backends"])


def test_an_unreachable_hub_is_probed_once_for_all_hub_tiers(monkeypatch, tmp_path):
    import socket

    from huggingface_hub import constants

    from clip_arena.models import loaders

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(loaders, "_REACHABLE", {})
    probes = []
    real = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: probes.append(a[0]) or real(*a, **k))
    sections = run(Image.new("RGB", (64, 64), "white"), "hello", only={"caption", "objects", "sentiment", "entities"})
    assert probes == [("127.0.0.1", 9)]
    for sec in sections.values():
        assert sec["status"] in {"degraded", "unavailable"} and "could not be reached" in sec["reason"]
