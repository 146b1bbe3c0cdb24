"""Video analysis on a clip made here with known answers: four shots (two emoji pictures, then two
colours carrying text that appears at known times), a 1 kHz tone on the audio track. The model is the
bundled demo model, trained on emoji: on emoji pictures its captions agree with the pictures, so "the
matching caption scores above a mismatched one over time" means something."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clip_arena.analyzer.video.report import analyze_video, video_text_similarity
from clip_arena.core.settings import ASSETS_DIR, Settings
from tests.video_helpers import Shot, write_clip

FPS = 12
SHOTS = [
    Shot(1.5, (255, 255, 255), picture=Image.open(ASSETS_DIR / "demo" / "images" / "1F34E.webp")),  # red apple
    Shot(1.5, (255, 255, 255), picture=Image.open(ASSETS_DIR / "demo" / "images" / "1F697.webp")),  # automobile
    Shot(1.5, (30, 60, 160), text="ACME", text_from_s=0.5),
    Shot(1.0, (200, 160, 20), text="SHOP NOW"),
]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video")
    clip = write_clip(folder / "ad.mp4", SHOTS, fps=FPS, size=(320, 240), tone_hz=1000)
    settings = Settings(offline=True, model="demo:finetuned", model_named=True)
    seen = []
    report = analyze_video(clip.path, "red apple\nautomobile", settings, brand="Acme",
                           frames_dir=folder / "frames", progress=lambda f, m: seen.append(f))
    return clip, report, seen


def test_cuts_are_found_within_one_frame(analysed):
    clip, report, _ = analysed
    video = report["video"]
    expected = [index / FPS for index in clip.cut_frames]
    assert len(video["cuts"]) == len(expected)
    assert all(abs(got - want) <= 1 / FPS + 1e-6 for got, want in zip(video["cuts"], expected))
    assert [s["start_s"] for s in video["shots"]] == pytest.approx([0.0] + expected, abs=1 / FPS + 1e-6)
    assert video["duration_s"] == pytest.approx(5.5, abs=0.1)
    assert video["cuts_per_second"] == pytest.approx(3 / 5.5, abs=0.02)
    assert video["average_shot_s"] == pytest.approx(5.5 / 4, abs=0.05)


def test_text_on_screen_and_its_first_time_within_a_second(analysed):
    clip, report, _ = analysed
    seen = {entry["text"].upper().replace(" ", ""): entry for entry in report["video"]["text_seen"]}
    for text, first in clip.text_first_s.items():
        key = text.replace(" ", "")
        assert key in seen, report["video"]["text_seen"]
        assert abs(seen[key]["first_s"] - first) <= 1.0
        assert seen[key]["last_s"] >= seen[key]["first_s"]


def test_loudness_of_the_tone_within_one_lu_of_pyloudnorm(analysed):
    import pyloudnorm

    clip, report, _ = analysed
    reference = pyloudnorm.Meter(clip.rate).integrated_loudness(clip.samples.astype(np.float64))
    assert report["video"]["loudness_lufs"] == pytest.approx(reference, abs=1.0)
    assert report["sections"]["audio"]["status"] == "ok"
    assert report["video"]["silence_share"] < 0.1 and report["video"]["clipping_share"] == 0
    assert report["video"]["loudness_curve"]


def test_the_matching_caption_scores_above_the_mismatched_one_over_time(analysed):
    _, report, _ = analysed
    lines = {c["text"]: c["points"] for c in report["video"]["caption_alignment"]}
    apple, car = lines["red apple"], lines["automobile"]
    in_apple = [k for k, p in enumerate(apple) if p["time_s"] < 1.5]
    in_car = [k for k, p in enumerate(apple) if 1.5 <= p["time_s"] < 3.0]
    assert in_apple and in_car
    assert np.mean([apple[k]["cosine"] - car[k]["cosine"] for k in in_apple]) > 0
    assert np.mean([car[k]["cosine"] - apple[k]["cosine"] for k in in_car]) > 0
    assert [p["time_s"] for p in report["video"]["alignment"]] == [p["time_s"] for p in apple]


def test_contract_sections_keyframes_and_rubric(analysed):
    _, report, progress = analysed
    assert report["model"] == "demo:finetuned"
    for name, sec in report["sections"].items():
        assert sec["status"] in {"ok", "degraded", "unavailable"} and "backend" in sec and "reason" in sec, name
    keyframes = report["sections"]["image_properties"]["keyframes"]
    assert len(keyframes) == 4 and all("time_s" in k and "brightness" in str(k) for k in keyframes)
    assert "ACME" in " ".join(k.get("text", "") for k in report["sections"]["ocr"]["keyframes"]).upper()
    assert report["sections"]["transcript"]["status"] == "unavailable"
    assert all(Path(k["path"]).is_file() for k in report["video"]["keyframes"])
    assert Image.open(report["video"]["contact_sheet"]).width > 0
    rubric = {c["id"]: c for c in report["video"]["rubric"]}
    assert set(rubric) == {"attention", "branding", "connection", "direction"}
    assert rubric["attention"]["passed"] is True and "1.5 s" in rubric["attention"]["evidence"]
    assert rubric["branding"]["passed"] is True and rubric["branding"]["times_s"][0] <= 5
    assert rubric["direction"]["passed"] is True and "shop now" in rubric["direction"]["evidence"]
    assert all(c["evidence"] for c in rubric.values())
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_alignment_figure_has_a_line_per_text_and_the_cuts(analysed):
    from clip_arena.analyzer.video.plot import alignment_figure

    _, report, _ = analysed
    fig = alignment_figure(report)
    assert [t.name for t in fig.data] == ["ad text", "red apple", "automobile"]
    assert len(fig.layout.shapes) == 3


def test_text_video_similarity_for_the_batch_scorer(analysed):
    from clip_arena.models import get_encoder

    clip, _, _ = analysed
    encoder = get_encoder("demo:finetuned", "cpu", None)
    result = video_text_similarity(clip.path, "red apple", encoder)
    assert result["frames"] == 6 and result["max_cosine"] >= result["mean_cosine"]
    assert result["max_s"] < 1.5  # the apple is on screen in the first shot
