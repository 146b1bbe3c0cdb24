"""The model fallback rule for photos: a real CLIP when it loads, the demo model (with a notice)
only when the configured model cannot be loaded, and Analyze's CLIP sections marked degraded."""

import json

import pytest
from PIL import Image

from clip_arena.analyzer.content.report import analyze
from clip_arena.analyzer.model_notice import notice_markdown
from clip_arena.analyzer.similarity_view import run_similarity
from clip_arena.core.errors import ModelLoadError
from clip_arena.core.settings import DEFAULT_MODEL, Settings
from clip_arena.models import fallback
from clip_arena.models.fallback import DEMO_NOTICE, FALLBACK_MODEL, looks_like_emoji, pick_photo_model

UNLOADABLE = "open_clip:ViT-B-32@openai"  # the real default: not cached here, and the hub is off


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(fallback, "_FAILED", {})


def photo(size=(400, 300)) -> Image.Image:
    """Not an emoji: a landscape picture with a gradient."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste((30, 90, 200), (0, 0, size[0] // 2, size[1] // 3))
    return image


def test_the_default_is_a_real_clip():
    assert DEFAULT_MODEL == "open_clip:ViT-B-32@openai" and Settings().model == DEFAULT_MODEL


def test_configured_model_that_loads_is_used_without_a_notice(tiny_open_clip_spec):
    encoder, used = pick_photo_model(tiny_open_clip_spec, tiny_open_clip_spec)
    assert used.used == tiny_open_clip_spec and not used.fell_back and used.notice() is None
    assert encoder.spec == tiny_open_clip_spec
    assert notice_markdown(None, Settings(model=tiny_open_clip_spec)) == ""


def test_configured_model_that_cannot_load_falls_back_to_the_demo_model_and_says_why():
    encoder, used = pick_photo_model(UNLOADABLE, UNLOADABLE)
    assert (used.used, used.fell_back, used.is_demo) == (FALLBACK_MODEL, True, True)
    assert encoder.spec == FALLBACK_MODEL
    assert used.notice().startswith(DEMO_NOTICE) and UNLOADABLE in used.notice() and "offline" in used.notice()
    shown = notice_markdown(None, Settings(model=UNLOADABLE))
    assert "trained on emoji only, scores on photos mean little" in shown and "point --model at a CLIP" in shown


def test_a_model_picked_by_hand_that_cannot_load_is_an_error_not_a_stand_in(tiny_open_clip_spec):
    with pytest.raises(ModelLoadError, match="ViT-B-32"):
        pick_photo_model(UNLOADABLE, tiny_open_clip_spec)


def test_choosing_the_demo_model_shows_the_notice_too(tiny_open_clip_spec):
    _, used = pick_photo_model("demo:base", tiny_open_clip_spec)
    assert used.used == "demo:base" and not used.fell_back and used.notice() == DEMO_NOTICE
    assert "trained on emoji only" in notice_markdown("demo:base", Settings(model=tiny_open_clip_spec))


def test_similarity_tab_scores_with_the_fallback_and_names_it(make_image):
    _, _, line = run_similarity(str(make_image()), "", "a red square\na boat", UNLOADABLE,
                                Settings(model=UNLOADABLE))
    assert f"`{FALLBACK_MODEL}`" in line


def test_emoji_renders_are_in_the_demo_domain_and_photos_are_not():
    from clip_arena.core.settings import DEFAULT_CATALOG

    emoji = Image.open(DEFAULT_CATALOG.parent / "images" / "1F600.webp")
    assert looks_like_emoji(emoji)
    assert not looks_like_emoji(photo()) and not looks_like_emoji(photo((512, 512)))


def test_analyze_marks_demo_model_sections_on_a_photo_as_degraded():
    report = analyze(photo(), "a cat on a sofa", Settings(model=UNLOADABLE), only={"alignment", "labels"})
    assert report["model"] == FALLBACK_MODEL and DEMO_NOTICE in report["model_notice"]
    for name in ("alignment", "labels"):
        sec = report["sections"][name]
        assert sec["status"] == "degraded" and DEMO_NOTICE in sec["reason"], (name, sec)
        assert sec["backend"] == f"clip:{FALLBACK_MODEL}"


def test_analyze_keeps_demo_model_sections_on_an_emoji_ok():
    from clip_arena.core.settings import DEFAULT_CATALOG

    emoji = Image.open(DEFAULT_CATALOG.parent / "images" / "1F600.webp").convert("RGB")
    sections = analyze(emoji, "grinning face", Settings(model=UNLOADABLE), only={"alignment", "labels"})["sections"]
    assert sections["alignment"]["status"] == "ok" and sections["labels"]["status"] == "ok"


def test_analyze_with_a_real_model_is_ok_on_a_photo(tiny_open_clip_spec):
    report = analyze(photo(), "a cat", Settings(model=tiny_open_clip_spec), only={"alignment", "labels"})
    assert report["model"] == tiny_open_clip_spec and "model_notice" not in report
    assert {s["status"] for s in report["sections"].values()} == {"ok"}


def test_cli_similarity_falls_back_from_the_default_with_a_note(make_image, capsys, monkeypatch, tmp_path):
    from clip_arena.cli.main import main

    monkeypatch.delenv("CLIP_ARENA_MODEL", raising=False)
    assert main(["similarity", "--image", str(make_image()), "--image-root", str(tmp_path), "--text", "a red square",
                 "--json"]) == 0
    out, err = capsys.readouterr()
    payload = json.loads(out)
    assert payload["model"] == FALLBACK_MODEL and payload["model_notice"].startswith(DEMO_NOTICE)
    assert "note: demo model: trained on emoji only" in err


def test_cli_similarity_with_a_named_model_that_cannot_load_fails_in_one_sentence(make_image, capsys, tmp_path):
    from clip_arena.cli.main import main

    code = main(["similarity", "--image", str(make_image()), "--image-root", str(tmp_path), "--text", "x",
                 "--model", "open_clip:ViT-B-16@openai"])
    assert code != 0
    err = capsys.readouterr().err
    assert "ViT-B-16" in err and "Traceback" not in err


def test_cli_analyze_notes_the_fallback_on_stderr_and_in_json(tmp_path, capsys, monkeypatch):
    from clip_arena.cli.main import main

    monkeypatch.delenv("CLIP_ARENA_MODEL", raising=False)
    photo().save(tmp_path / "photo.png")
    code = main(["analyze", "--image", str(tmp_path / "photo.png"), "--image-root", str(tmp_path), "--text", "a cat",
                 "--section", "alignment", "--json"])
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 0 and report["model"] == FALLBACK_MODEL and report["model_notice"].startswith(DEMO_NOTICE)
    assert report["sections"]["alignment"]["status"] == "degraded" and "note: demo model" in err


def test_only_a_model_the_user_did_not_name_falls_back(monkeypatch):
    """One rule for every tab, command and engine (models.fallback.photo_model)."""
    monkeypatch.delenv("CLIP_ARENA_MODEL", raising=False)
    default = Settings.from_env()
    assert not default.model_named and fallback.photo_model(default)[1].used == FALLBACK_MODEL
    named = default.with_overrides(model=UNLOADABLE)  # --model, even spelling out the default
    assert named.model_named
    with pytest.raises(ModelLoadError):
        fallback.photo_model(named)
    monkeypatch.setenv("CLIP_ARENA_MODEL", UNLOADABLE)  # named in the environment
    assert Settings.from_env().model_named
    with pytest.raises(ModelLoadError):
        fallback.photo_model(Settings.from_env())


def test_cli_analyze_with_a_named_model_that_cannot_load_fails(tmp_path, capsys, monkeypatch):
    """On main `analyze --model SPEC` put the demo model in its place and exited 0."""
    from clip_arena.cli.main import main

    monkeypatch.delenv("CLIP_ARENA_MODEL", raising=False)
    photo().save(tmp_path / "photo.png")
    code = main(["analyze", "--image", str(tmp_path / "photo.png"), "--image-root", str(tmp_path), "--text", "a cat",
                 "--section", "alignment", "--model", UNLOADABLE, "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "ViT-B-32" in err and "Traceback" not in err
