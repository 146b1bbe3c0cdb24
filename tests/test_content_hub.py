"""The better tiers' real loading and inference code, run on tiny random models saved in the test
(the hub's weights cannot be downloaded here). What is checked is the plumbing: the model named
by CLIP_ARENA_*_MODEL is loaded once, runs, and fills its own fields, not the fallback's."""

import pytest
from PIL import Image

from clip_arena.analyzer.content import hub
from clip_arena.analyzer.content.report import analyze
from clip_arena.core.settings import Settings
from tests import tiny_hub_models as tiny


@pytest.fixture(scope="module")
def hub_models(tmp_path_factory):
    base = tmp_path_factory.mktemp("hub")
    return {"sentiment": tiny.save_text_classifier(base / "sentiment"),
            "ner": tiny.save_token_classifier(base / "ner"),
            "caption": tiny.save_blip(base / "caption"),
            "objects": tiny.save_detr(base / "objects")}


@pytest.fixture
def use_hub_models(hub_models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for role, folder in hub_models.items():
        monkeypatch.setenv(f"CLIP_ARENA_{role.upper()}_MODEL", str(folder))
    hub.clear()
    yield hub_models
    hub.clear()


def sections(only, image=None, text="I love the red shoe from acme in paris, shop now"):
    return analyze(image, text, Settings(), model="demo:base", only=only)["sections"]


def test_sentiment_model_tier_fills_probabilities_not_vader_fields(use_hub_models):
    sec = sections({"sentiment"})["sentiment"]
    assert sec["status"] == "ok" and sec["backend"] == f"transformers:{use_hub_models['sentiment']}"
    assert set(sec["probabilities"]) == {"negative", "neutral", "positive"}
    assert sum(sec["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert sec["label"] == max(sec["probabilities"], key=sec["probabilities"].get)
    assert not any(k.startswith("vader") for k in sec)


def test_ner_model_tier_adds_named_entities_beside_the_rules(use_hub_models):
    sec = sections({"entities"})["entities"]
    assert sec["status"] == "ok" and sec["backend"] == f"transformers:{use_hub_models['ner']}+rules"
    assert {e["type"] for e in sec["named_entities"]} <= {"PER", "ORG", "LOC"}
    assert sec["patterns"]["calls_to_action"] == ["shop now"]


def test_blip_tier_writes_a_caption_from_its_vocabulary(use_hub_models):
    sec = sections({"caption"}, image=Image.new("RGB", (64, 48), "red"))["caption"]
    assert sec["status"] == "ok" and sec["backend"] == f"transformers:{use_hub_models['caption']}"
    assert isinstance(sec["caption"], str) and set(sec["caption"].split()) <= set(tiny.WORDS)


def test_detr_tier_replaces_the_haar_fields(use_hub_models):
    sec = sections({"objects"}, image=Image.new("RGB", (96, 64), "white"))["objects"]
    assert sec["status"] == "ok" and sec["backend"] == f"transformers:{use_hub_models['objects']}"
    assert isinstance(sec["detections"], list) and "faces" not in sec
    assert sum(sec["counts"].values()) == len(sec["detections"])


def test_hub_models_load_once_and_are_shared(use_hub_models, monkeypatch):
    from clip_arena.analyzer.content import sentiment

    loads = []
    real = sentiment._load_classifier
    monkeypatch.setattr(sentiment, "_load_classifier", lambda name, device: loads.append(name) or real(name, device))
    for text in ("good", "bad", "fine"):
        assert sections({"sentiment"}, text=text)["sentiment"]["status"] == "ok"
    assert loads == [str(use_hub_models["sentiment"])]


def test_an_empty_model_setting_turns_a_tier_off(use_hub_models, monkeypatch):
    monkeypatch.setenv("CLIP_ARENA_SENTIMENT_MODEL", "")
    sec = sections({"sentiment"})["sentiment"]
    assert sec["backend"] == "vader" and "turned off" in sec["reason"]
