"""Speech in a video, the hub tier: without a model (offline here) the transcript section says why and
no audio is kept for it; with one, the audio reaches it as Whisper takes it (16 kHz mono float32,
the whole track) and its words come back with their times. The model stands in as a recorder: the
hub's Whisper weights cannot be downloaded here (the real loading code is transformers' pipeline)."""

import numpy as np
import pytest

from clip_arena.analyzer.content import hub
from clip_arena.analyzer.video import speech
from clip_arena.analyzer.video.report import analyze_video
from clip_arena.core.settings import Settings
from tests.video_helpers import Shot, write_clip


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "talk.mp4", [Shot(1.0, (200, 40, 40)), Shot(1.5, (40, 40, 200))], fps=10,
                      tone_hz=440, rate=44100)


@pytest.fixture(autouse=True)
def fresh_hub():
    hub.clear()
    yield
    hub.clear()


def test_offline_the_transcript_says_why_and_keeps_no_audio(clip, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(clip.path.parent / "hf"))  # nothing cached
    report = analyze_video(clip.path, "a talk", Settings(offline=True, model="demo:base", model_named=True))
    section = report["sections"]["transcript"]
    assert section["status"] == "unavailable" and section["needs"] == ["openai/whisper-tiny"]
    assert section["reason"].startswith("speech transcription needs a hub model: ")
    held = speech.Speech(Settings(offline=True))
    held.push(np.ones((2, 44100), np.float32), 44100)
    assert not held.ready() and held.kept == 0


def test_with_a_model_the_whole_track_reaches_it_as_16_khz_mono(clip, monkeypatch):
    heard = {}

    def recorder(name, device):
        def run(audio, **kwargs):
            heard.update(audio=audio, kwargs=kwargs, name=name)
            return {"text": " hello there", "chunks": [{"text": " hello", "timestamp": (0.0, 1.0)},
                                                       {"text": " there", "timestamp": (1.0, 2.5)}]}
        return run

    monkeypatch.setattr(speech, "_load_pipeline", recorder)
    monkeypatch.setenv("CLIP_ARENA_TRANSCRIPT_MODEL", str(clip.path.parent))  # a local folder: no hub call
    report = analyze_video(clip.path, "a talk", Settings(offline=True, model="demo:base", model_named=True))
    section = report["sections"]["transcript"]
    assert section["status"] == "ok" and section["text"] == "hello there"
    assert section["lines"] == [{"text": "hello", "start_s": 0.0, "end_s": 1.0},
                                {"text": "there", "start_s": 1.0, "end_s": 2.5}]
    audio = heard["audio"]
    assert audio["sampling_rate"] == 16_000 and audio["raw"].dtype == np.float32 and audio["raw"].ndim == 1
    assert len(audio["raw"]) == pytest.approx(2.5 * 16_000, rel=0.03)  # the whole track, resampled
    tone = np.abs(np.fft.rfft(audio["raw"][:16_000]))
    assert abs(np.argmax(tone) - 440) <= 2  # the 440 Hz tone is still at 440 Hz
    assert heard["kwargs"]["return_timestamps"] is True


def test_a_long_track_is_cut_at_the_cap_and_said(monkeypatch):
    monkeypatch.setattr(speech, "MAX_S", 1.0)
    monkeypatch.setattr(speech.hub, "load", lambda *a, **k: (lambda audio, **kw: {"text": "x", "chunks": []}))
    held = speech.Speech(Settings())
    for _ in range(5):
        held.push(np.zeros((1, 8000), np.float32), 8000)
    assert held.kept == 16_000
    assert "the first 1 s only" in held.section()["reason"]
