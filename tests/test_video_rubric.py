"""What a stranger's attack on video analysis found (issue 23): keyframes of a long video all from its
first part, a call to action missed when OCR drops the space, a face found by the fallback detector
given as plain fact, and a bad cap in the environment ending in a traceback. Each fails before the fix."""

import pytest

from clip_arena.analyzer.video import rubric
from clip_arena.analyzer.video.limits import VideoLimits
from clip_arena.analyzer.video.report import spread
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings


def test_keyframes_are_spread_over_the_whole_video():
    assert spread(3, 12) == [0, 1, 2]
    picked = spread(30, 12)  # 30 equal shots of a 60 s video: not the first 12
    assert len(picked) == 12 and picked[0] == 0 and picked[-1] == 29
    gaps = {b - a for a, b in zip(picked, picked[1:])}
    assert gaps <= {2, 3}


@pytest.mark.parametrize("read", ["SHOPNOW", "Shop-now!", "shop now", "BUYNOW 50% OFF"])
def test_a_call_to_action_read_without_its_space_counts(read):
    check = rubric.direction([{"text": read, "first_s": 2.0}], "", ocr_ran=True)
    assert check["passed"] is True and "2.0 s" in check["evidence"]


def test_no_call_to_action_is_invented():
    assert rubric.direction([{"text": "SUMMER SALE", "first_s": 1.0}], "", ocr_ran=True)["passed"] is False


def test_faces_from_the_fallback_detector_are_said_to_be():
    found = [{"time_s": 7.0, "faces": 1}]
    plain = rubric.connection(found, True)
    weak = rubric.connection(found, True, "opencv-haar")
    assert plain["passed"] and weak["passed"] and "fallback detector (opencv-haar)" in weak["evidence"]
    assert "fallback" not in plain["evidence"]


def test_caps_from_the_environment_take_sizes_and_refuse_nonsense_in_one_sentence(monkeypatch):
    monkeypatch.setenv("CLIP_ARENA_MAX_VIDEO_BYTES", "10MB")
    monkeypatch.setenv("CLIP_ARENA_MAX_VIDEO_SECONDS", "90")
    limits = VideoLimits.for_settings(Settings())
    assert limits.max_bytes == 10 * 1024 * 1024 and limits.max_duration_s == 90.0
    for name, value in (("CLIP_ARENA_MAX_VIDEO_SECONDS", "abc"), ("CLIP_ARENA_MAX_VIDEO_BYTES", "-5"),
                        ("CLIP_ARENA_MAX_VIDEO_PIXELS", "4k")):
        monkeypatch.setenv(name, value)
        with pytest.raises(UserError, match=f"{name}={value!r} is not a positive number"):
            VideoLimits.for_settings(Settings())
        monkeypatch.delenv(name)


def test_an_audio_track_longer_than_the_video_does_not_stretch_its_shots(tmp_path):
    from clip_arena.analyzer.video.report import analyze_video
    from tests.video_helpers import Shot, write_clip

    clip = write_clip(tmp_path / "long_audio.mp4", [Shot(1.0, (200, 30, 30)), Shot(1.0, (30, 30, 200))], fps=10,
                      tone_hz=440, audio_seconds=12.0)
    video = analyze_video(clip.path, "", Settings(offline=True, model="demo:base", model_named=True))["video"]
    assert video["duration_s"] == pytest.approx(2.0, abs=0.15) and video["shots"][-1]["end_s"] < 2.2
    assert video["cuts_per_second"] == pytest.approx(0.5, abs=0.05)
