"""The Analyze tab's video outputs from a report, without a browser: rubric with evidence, keyframe
captions, no server folder in the download, one creative at a time."""

import pytest

from clip_arena.analyzer.analyze_view import run_tab
from clip_arena.analyzer.video_view import keyframe_gallery, rubric_html, video_cards_html, without_server_paths
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings


def report():
    return {"model": "demo:base", "timings_ms": {"total": 1200.0},
            "sections": {"ocr": {"status": "ok", "backend": "rapidocr", "reason": None,
                                 "keyframes": [{"time_s": 0.5, "shot": 0, "status": "ok", "text": "<b>SALE</b>"}]}},
            "video": {"duration_s": 2.0, "shots": [{"index": 0, "start_s": 0, "end_s": 2}], "cuts": [],
                      "text_seen": [{"text": "<b>SALE</b>", "first_s": 0.5, "last_s": 1.0}], "loudness_lufs": None,
                      "rubric": [{"id": "branding", "name": "Branding", "passed": None,
                                  "evidence": "Not judged: no brand <name> was given.", "times_s": []},
                                 {"id": "direction", "name": "Direction", "passed": True,
                                  "evidence": "'shop now' from 1.0 s", "times_s": [1.0]}],
                      "keyframes": [{"time_s": 0.5, "shot": 0, "path": "/srv/tmp/secret/keyframe_01.jpg"}],
                      "contact_sheet": "/srv/tmp/secret/contact_sheet.jpg"}}


def test_rubric_says_each_verdict_with_its_evidence_escaped():
    html = rubric_html(report())
    assert 'data-check="branding" data-verdict="not judged"' in html and "no brand &lt;name&gt;" in html
    assert 'data-verdict="passed"' in html and "at 1.0 s" in html


def test_keyframes_are_captioned_with_time_and_shot_and_cards_escape_text():
    assert keyframe_gallery(report()) == [("/srv/tmp/secret/keyframe_01.jpg", "0.5 s · shot 1")]
    cards = video_cards_html(report())
    assert "<b>SALE" not in cards and "&lt;b&gt;SALE&lt;/b&gt; (0.5 s)" in cards and "0.5 s · shot 1" in cards


def test_the_download_names_no_server_folder():
    out = without_server_paths(report())
    assert "/srv" not in str(out) and out["video"]["keyframes"][0]["path"] == "keyframe_01.jpg"


def test_an_image_and_a_video_together_are_refused(tmp_path):
    with pytest.raises(UserError, match="an image or a video, not both"):
        run_tab(str(tmp_path / "a.png"), str(tmp_path / "a.mp4"), "", "", "", "demo:base", Settings())
