"""`clip-arena analyze` as a user runs it."""

import json

from clip_arena.analyzer.content.report import SECTION_NAMES
from tests.cli_runner import run_cli
from tests.drawing import printed_text


def test_analyze_json_follows_the_design_contract(tmp_path, tiny_open_clip_spec):
    image = tmp_path / "ad.png"
    printed_text("SALE 50% OFF").save(image)
    done = run_cli("analyze", "--image", str(image), "--text", "Huge sale: 50% off, shop now!",
                   "--model", tiny_open_clip_spec, "--offline", "--json", "--image-root", str(image.parent))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model"] == tiny_open_clip_spec and list(report["sections"]) == list(SECTION_NAMES)
    for sec in report["sections"].values():
        assert sec["status"] in {"ok", "degraded", "unavailable"} and "backend" in sec and "reason" in sec
    assert "SALE" in report["sections"]["ocr"]["text"]
    assert report["sections"]["entities"]["patterns"]["percentages"] == ["50%"]
    assert report["sections"]["sentiment"]["label"] == "positive"
    assert report["sections"]["effectiveness"]["reason"] == "no trained model"


def test_analyze_text_output_and_section_filter(tiny_open_clip_spec):
    done = run_cli("analyze", "--text", "Sign up today at example.com", "--section", "entities",
                   "--section", "text_properties", "--model", tiny_open_clip_spec, "--offline")
    assert done.returncode == 0, done.stderr
    assert "[degraded] entities (rules)" in done.stdout and "[ok] text_properties" in done.stdout
    assert "image_properties" not in done.stdout and "sign up" in done.stdout


def test_analyze_bad_input_is_one_clear_sentence(tmp_path):
    for args, message in ((["--text", " "], "Give an image"),
                          (["--text", "x", "--section", "colour"], "Unknown section colour"),
                          (["--image", str(tmp_path / "nope.png")], "nope.png")):
        done = run_cli("analyze", *args, "--offline")
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
