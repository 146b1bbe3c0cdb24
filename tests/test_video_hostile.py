"""Hostile and odd video files: each is refused in one clear sentence (a VideoLoadError, which is an
ImageLoadError with a kind for batch summaries) before any model loads, in bounded time; the other
containers the issue names decode."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from clip_arena.analyzer.policy import ImagePolicy
from clip_arena.analyzer.video.decode import VideoReader
from clip_arena.analyzer.video.limits import VideoLimits
from clip_arena.analyzer.video.report import analyze_video
from clip_arena.analyzer.video.shots import ShotDetector
from clip_arena.analyzer.video.source import UploadedVideo, VideoLoadError, open_video
from clip_arena.core.settings import Settings
from tests.video_helpers import Shot, write_clip

LIMITS = VideoLimits()
COLOURS = [Shot(1.0, (200, 30, 30)), Shot(1.0, (30, 200, 30)), Shot(1.0, (30, 30, 200))]


def read_all(source, limits=LIMITS, policy=None):
    """Decode every frame as the analysis does; (info, frames, cut times)."""
    with VideoReader(open_video(source, policy, limits), limits) as reader:
        detector, frames = ShotDetector(), 0
        for frame in reader.frames():
            detector.push(frame.time_s, frame.small())
            frames += 1
        return reader.info, frames, detector.cuts


def refusal(source, **kwargs) -> VideoLoadError:
    with pytest.raises(VideoLoadError) as caught:
        read_all(source, **kwargs)
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message
    return caught.value


def encode(path: Path, size: tuple[int, int], pts: list[int], rate: int = 1, codec: str = "libx264"):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for p in pts:
            frame = av.VideoFrame.from_ndarray(np.zeros((size[1], size[0], 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = p, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("hostile") / "ok.mp4", COLOURS, fps=12, tone_hz=440)


def test_zero_length_text_and_playlist_files_named_mp4(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert refusal(tmp_path / "empty.mp4").kind == "empty"
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
    err = refusal(tmp_path / "notes.mp4")
    assert err.kind == "not_video" and "is not a video file" in str(err)
    # an HLS playlist would make FFmpeg open the URLs inside it: never handed to FFmpeg
    (tmp_path / "list.mp4").write_text("#EXTM3U\n#EXTINF:10,\nhttp://169.254.169.254/latest/x.ts\n")
    assert refusal(tmp_path / "list.mp4").kind == "not_video"
    assert refusal(tmp_path / "missing.mp4").kind == "not_found"
    assert refusal(tmp_path).kind in ("not_a_file", "not_video")


def test_truncated_files(tmp_path, clip):
    data = clip.path.read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])  # mp4 keeps its index at the end
    err = refusal(tmp_path / "half.mp4")
    assert err.kind in ("corrupt", "truncated") and "truncated" in str(err)
    webm = write_clip(tmp_path / "ok.webm", COLOURS * 3, fps=12, codec="libvpx")
    webm_data = webm.path.read_bytes()
    (tmp_path / "cut.webm").write_bytes(webm_data[: len(webm_data) // 3])  # the frames end early
    err = refusal(tmp_path / "cut.webm")
    assert err.kind in ("corrupt", "truncated")


def test_a_ten_hour_header_is_refused_before_decoding(tmp_path):
    encode(tmp_path / "long.mp4", (64, 48), [0, 36_000])  # two frames, ten hours apart
    err = refusal(tmp_path / "long.mp4")
    assert err.kind == "too_long" and "10 h" in str(err) and "10 min" in str(err)


def test_a_stream_longer_than_its_header_says_stops_at_the_cap(tmp_path):
    encode(tmp_path / "long.mp4", (64, 48), list(range(0, 40, 2)))  # 40 s
    short = VideoLimits(max_duration_s=60.0)
    assert read_all(tmp_path / "long.mp4", short)[1] == 20
    err = refusal(tmp_path / "long.mp4", limits=VideoLimits(max_duration_s=30.0))
    assert err.kind == "too_long"


def test_8k_frames_are_refused_by_their_header(tmp_path):
    encode(tmp_path / "8k.mp4", (7680, 4320), [0])
    err = refusal(tmp_path / "8k.mp4")
    assert err.kind == "too_many_pixels" and "7680x4320" in str(err)


def test_no_video_stream(tmp_path):
    import av

    with av.open(str(tmp_path / "voice.mp4"), "w") as container:
        stream = container.add_stream("aac", rate=48000, layout="mono")
        for k in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, k * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    err = refusal(tmp_path / "voice.mp4")
    assert err.kind == "no_video_stream" and "only audio" in str(err)


def test_byte_cap_and_roots(tmp_path, clip):
    err = refusal(clip.path, limits=VideoLimits(max_bytes=1000))
    assert err.kind == "too_large" and "cap" in str(err)
    browser = ImagePolicy(roots=(str(tmp_path),), audience="browser")
    assert refusal(clip.path, policy=browser).kind == "outside_roots"
    assert refusal(UploadedVideo(str(clip.path), upload_dir=str(tmp_path))).kind == "outside_roots"
    assert read_all(UploadedVideo(str(clip.path), upload_dir=str(clip.path.parent)))[1] == 36


def test_refused_before_any_model_loads(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    settings = Settings(offline=True, model="demo:no-such-model", model_named=True)
    with pytest.raises(VideoLoadError, match="is not a video file"):
        analyze_video(tmp_path / "notes.mp4", "text", settings)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=4000), noise=st.binary(min_size=0, max_size=300))
def test_damaged_files_give_one_sentence_or_decode(clip, cut, noise):
    """A valid clip's head with garbage after it: it decodes or is refused in a sentence, nothing else."""
    data = clip.path.read_bytes()[:cut] + noise
    try:
        read_all(data)
    except VideoLoadError as err:
        assert str(err).endswith(".") and "\n" not in str(err)


def test_other_containers_decode(tmp_path):
    from PIL import Image

    webm = write_clip(tmp_path / "a.webm", COLOURS, fps=12, codec="libvpx")
    frames = [Image.new("RGB", (64, 48), s.colour) for s in COLOURS]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=1000, loop=0)
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:], duration=1000, loop=0)
    mkv = write_clip(tmp_path / "a.mkv", COLOURS, fps=12)
    for path in (webm.path, tmp_path / "a.gif", tmp_path / "a.webp", mkv.path):
        info, _, cuts = read_all(path)
        assert cuts == pytest.approx([1.0, 2.0], abs=0.09), path
        assert info.duration_s == pytest.approx(3.0, abs=0.1), path


def test_caps_are_lower_when_hosted_and_configurable(monkeypatch):
    local, hosted = VideoLimits.for_settings(Settings()), VideoLimits.for_settings(Settings(hosted=True))
    assert hosted.max_bytes < local.max_bytes and hosted.max_duration_s < local.max_duration_s
    assert hosted.max_pixels < local.max_pixels
    monkeypatch.setenv("CLIP_ARENA_MAX_VIDEO_SECONDS", "30")
    assert VideoLimits.for_settings(Settings(hosted=True)).max_duration_s == 30
    assert VideoLimits(max_samples=100).sample_rate(200.0) == 0.5  # long videos are sampled more sparsely


def test_urls_go_through_the_image_fetcher_and_its_refusals():
    err = refusal("http://127.0.0.1:9/ad.mp4")
    assert err.kind == "private_address"
    browser = ImagePolicy(roots=None, audience="browser")
    assert refusal("/etc/passwd", policy=browser).kind == "local_path_refused"
    err = refusal("http://127.0.0.1:9/ad.mp4", policy=browser)
    assert err.kind == "private_address" and "this server does not fetch videos" in str(err)
