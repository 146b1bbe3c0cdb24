"""Video analysis speed: seconds of video analysed per second of wall time on a synthetic 1080p clip
(moving picture, a cut every 3 s, text on screen, a tone), against decoding every frame at full size
(RGB, as a straightforward reader would) in the same run. Warm: the models are loaded by a short
analysis first.

- full-size decode: PyAV decodes every frame and converts it to full-size RGB (the baseline)
- our pass: the analysis' own pass (every frame converted in FFmpeg to 64x36 for cuts, 2 frames a
  second at 640 px), without the models
- full analysis: analyze_video with the demo model, offline (CLIP, OCR, the keyframe sections, loudness)

    python bench/bench_video.py --seconds 30 --size 1920x1080 --fps 30
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clip_arena.analyzer.video.decode import VideoReader  # noqa: E402
from clip_arena.analyzer.video.limits import VideoLimits  # noqa: E402
from clip_arena.analyzer.video.report import analyze_video  # noqa: E402
from clip_arena.analyzer.video.source import open_video  # noqa: E402
from clip_arena.analyzer.video.timeline import ANALYSIS_SIDE, Sampler  # noqa: E402
from clip_arena.core.settings import Settings  # noqa: E402


def write_clip(path: Path, seconds: float, size: tuple[int, int], fps: int) -> None:
    import av
    from PIL import Image, ImageDraw, ImageFont

    w, h = size
    rng = np.random.default_rng(0)
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", h // 8)
    except OSError:
        font = ImageFont.load_default(h // 8)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) / max(w, h)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "23"}
        audio = container.add_stream("aac", rate=48000, layout="mono")
        colours = rng.uniform(40, 215, (int(seconds // 3) + 2, 3))
        for n in range(int(seconds * fps)):
            t = n / fps
            shot = int(t // 3)
            wave = 40 * np.sin(8 * x + 3 * t + shot) * np.cos(5 * y - 2 * t)
            rgb = np.clip(colours[shot][None, None, :] + wave[..., None], 0, 255).astype(np.uint8)
            image = Image.fromarray(rgb)
            if shot % 2:
                ImageDraw.Draw(image).text((w // 10 + int(20 * t), h // 3), "SHOP NOW", fill="white", font=font)
            frame = av.VideoFrame.from_image(image)
            frame.pts, frame.time_base = n, Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * 48000)) / 48000)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)


def full_size_decode(path: Path) -> int:
    import av

    frames = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            frames += 1
    return frames


def our_pass(path: Path) -> int:
    limits = VideoLimits()
    frames = 0
    with VideoReader(open_video(path, None, limits), limits) as reader:
        sampler = Sampler(limits.sample_rate(reader.info.duration_s or 0))
        for frame in reader.frames(on_audio=lambda *a: None):
            frame.small()
            if sampler.take(frame.time_s):
                frame.image(ANALYSIS_SIDE)
            frames += 1
    return frames


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    settings = Settings(offline=True, model="demo:finetuned", model_named=True)
    with tempfile.TemporaryDirectory() as folder:
        clip, warm = Path(folder) / "clip.mp4", Path(folder) / "warm.mp4"
        spent, _ = timed(write_clip, clip, args.seconds, size, args.fps)
        print(f"clip: {args.seconds:g} s, {size[0]}x{size[1]}, {args.fps} fps (written in {spent:.1f} s)")
        write_clip(warm, 1.0, (320, 180), 10)
        analyze_video(warm, "shop now", settings)  # models and OCR loaded
        base_s, frames = timed(full_size_decode, clip)
        pass_s, _ = timed(our_pass, clip)
        full_s, report = timed(analyze_video, clip, "Shop now: summer sale", settings)
    rows = [("full-size decode (baseline)", base_s), ("our pass (no models)", pass_s), ("full analysis", full_s)]
    print(f"{'':30} {'wall s':>8} {'video s per wall s':>20} {'vs baseline':>12}")
    for name, spent in rows:
        print(f"{name:30} {spent:8.2f} {args.seconds / spent:20.2f} {base_s / spent:11.2f}x")
    print(f"frames: {frames}; shots found: {len(report['video']['shots'])} (a cut every 3 s: "
          f"{int(np.ceil(args.seconds / 3))}); OCR reads: {report['video']['ocr_reads']}; "
          f"timings (ms): {report['timings_ms']}")


if __name__ == "__main__":
    main()
