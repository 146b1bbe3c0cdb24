"""The effectiveness model with videos in its training data: pace, first-brand time, alignment over
time and loudness as features; images-only data keeps its features (tests/test_effectiveness.py)."""

import math

import pandas as pd
import pytest

from clip_arena.core.settings import Settings
from clip_arena.effectiveness.features import VIDEO_FEATURES, brand_first_seen, video_analysis_numbers, video_numbers
from clip_arena.effectiveness.train import TrainOptions, train
from tests.test_effectiveness import grey
from tests.video_helpers import Shot, write_clip


def video_report(ocr="ok", loudness=-20.0, alignment=(0.1, 0.3)):
    return {"sections": {"ocr": {"status": ocr}},
            "video": {"cuts_per_second": 0.5, "duration_s": 4.0, "loudness_lufs": loudness,
                      "alignment": [{"time_s": i, "cosine": c} for i, c in enumerate(alignment)],
                      "text_seen": [{"text": "SHOP NOW", "first_s": 1.0}, {"text": "A C M E", "first_s": 2.5}]}}


def test_video_numbers_say_pace_brand_time_alignment_and_loudness():
    got = video_numbers(video_report(), "Acme")
    assert got["vid__cuts_per_second"] == 0.5 and got["vid__first_brand_s"] == 2.5 and got["vid__brand_seen"] == 1
    assert got["vid__alignment_mean"] == pytest.approx(0.2) and got["vid__alignment_max"] == pytest.approx(0.3)
    assert got["vid__loudness_lufs"] == -20.0 and set(got) == set(VIDEO_FEATURES)


def test_unknown_is_missing_never_zero():
    never = video_numbers(video_report(), "Globex")
    assert never["vid__brand_seen"] == 0 and math.isnan(never["vid__first_brand_s"])
    for brand, ocr in ((None, "ok"), ("Acme", "unavailable")):  # no brand given, or no OCR could read
        got = video_numbers(video_report(ocr=ocr), brand)
        assert math.isnan(got["vid__brand_seen"]) and math.isnan(got["vid__first_brand_s"])
    silent = video_numbers(video_report(loudness=None, alignment=()), "Acme")
    assert math.isnan(silent["vid__loudness_lufs"]) and math.isnan(silent["vid__alignment_mean"])
    assert brand_first_seen([{"text": "acme", "first_s": 3.0}], "") is None


def test_keyframe_sections_become_the_image_features_averaged():
    sections = {"image_properties": {"status": "ok", "keyframes": [
                    {"time_s": 0, "shot": 0, "status": "ok", "brightness": 0.2},
                    {"time_s": 1, "shot": 1, "status": "ok", "brightness": 0.6},
                    {"time_s": 2, "shot": 2, "status": "unavailable"}]},
                "sentiment": {"status": "degraded", "vader_compound": 0.5},
                "audio": {"status": "ok", "loudness_lufs": -20.0}}
    got = video_analysis_numbers(sections, {"image_properties", "sentiment"})
    assert got == {"ana__image_properties.brightness": pytest.approx(0.4), "ana__sentiment.vader_compound": 0.5}


def test_training_data_with_videos_gets_video_features_and_predicts_a_video(tmp_path, tiny_open_clip_spec):
    rows = []
    for i in range(20):
        grey(0.1 + 0.04 * i).save(tmp_path / f"ad{i}.png")
        rows.append({"image": f"ad{i}.png", "text": "New collection", "brand": "Acme", "ctr": 0.02 + 0.002 * i})
    write_clip(tmp_path / "fast.mp4", [Shot(0.5, (200, 40, 40), text="ACME"), Shot(0.5, (40, 40, 200)),
                                       Shot(0.5, (40, 160, 40))], fps=8, size=(160, 96), tone_hz=440)
    write_clip(tmp_path / "slow.mp4", [Shot(1.5, (90, 90, 90))], fps=8, size=(160, 96))
    rows += [{"image": name, "text": "Acme sneakers", "brand": "Acme", "ctr": ctr}
             for name, ctr in (("fast.mp4", 0.08), ("slow.mp4", 0.01)) * 2]
    rows.append({"image": "broken.mp4", "text": "x", "brand": "Acme", "ctr": 0.03})
    (tmp_path / "broken.mp4").write_text("not a video")
    pd.DataFrame(rows).to_csv(tmp_path / "creatives.csv", index=False)
    opts = TrainOptions(target="ctr", brand_column="brand", model=tiny_open_clip_spec, folds=2)
    trained = train(tmp_path / "creatives.csv", tmp_path / "m.joblib", opts, Settings())
    report = trained.report
    assert set(VIDEO_FEATURES) <= set(trained.columns) and "vid" in report["ablation"]
    assert report["tabular"] == [] and report["rows"] == 25  # the brand column is no tabular feature
    assert len(report["image_problems"]) == 1 and report["image_problems"][0].startswith("row 25:")
    assert "not a video file" in report["image_problems"][0]

    from clip_arena.analyzer.video.report import analyze_video
    from clip_arena.effectiveness.predict import video_prediction

    frames = tmp_path / "frames"
    frames.mkdir()
    analysed = analyze_video(str(tmp_path / "fast.mp4"), "Acme sneakers", Settings(), model=tiny_open_clip_spec,
                             brand="Acme", frames_dir=frames)
    sec = video_prediction(str(tmp_path / "m.joblib"), analysed, str(tmp_path / "fast.mp4"), "Acme sneakers", "Acme",
                           Settings())
    assert sec["status"] == "ok" and sec["target"] == "ctr" and 0 < sec["prediction"] < 0.2 and sec["reason"] is None
